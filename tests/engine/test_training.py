"""The reusable example loop runs and reports sane metrics."""
import pytest
import torch

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.datasets import load_college_msg
from pyg_mspipe.engine.timing import PhaseTimer
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch, train_steps

pytestmark = pytest.mark.timeout(120)


def test_train_and_evaluate_on_college_msg():
    data = load_college_msg(msg_dim=8)[:3000]
    train, val, _ = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    torch.manual_seed(0)
    model = build_tgn(data.num_nodes, 8, memory_dim=16, time_dim=16, embedding_dim=16)
    nl = LastNeighborLoader(data.num_nodes, 10)
    timer = PhaseTimer()
    losses = []
    loss = train_epoch(model, TemporalDataLoader(train, 100, 1.0), nl, data, timer=timer,
                       losses=losses)
    assert 0 < loss < 5 and len(losses) == (train.num_events + 99) // 100
    assert {"memory", "sample", "embed+loss", "backward+step", "load"} <= set(timer.seconds)
    ap, auc = evaluate(model, TemporalDataLoader(val, 100, 1.0), nl, data)
    assert 0 <= ap <= 1 and 0 <= auc <= 1


def test_train_steps_is_train_epoch_one_batch_at_a_time():
    data = load_college_msg(msg_dim=8)[:1000]

    def run(by_steps):
        torch.manual_seed(0)
        model = build_tgn(data.num_nodes, 8, memory_dim=16, time_dim=16, embedding_dim=16)
        nl = LastNeighborLoader(data.num_nodes, 10)
        loader = TemporalDataLoader(data, 100, 1.0)
        if not by_steps:
            losses = []
            train_epoch(model, loader, nl, data, losses=losses)
            return losses, None
        steps = train_steps(model, loader, nl, data)
        first = next(steps)  # one batch trained, the rest not yet
        rest = list(steps)
        return [loss for loss, _ in [first] + rest], [n for _, n in [first] + rest]

    by_epoch, _ = run(False)
    by_steps, sizes = run(True)
    assert by_steps == by_epoch and len(by_steps) == 10 and sizes == [100] * 10
