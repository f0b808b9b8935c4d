"""DyGLib's TGN recipe with a RecentNeighborSampler given to the loader:
each batch's sample drawn ahead in the background (the same run as
sampling in the loop), and under the pipeline (s=0 the sequential run;
s=2 really stale, and with frozen parameters the sequential memory)."""
import pytest
import torch

from pyg_mspipe import TemporalDataLoader
from pyg_mspipe.datasets import synthetic_events
from pyg_mspipe.engine.recipes import build_event_tgn, event_train_steps
from pyg_mspipe.nn import RecentNeighborSampler

from ..helpers import wait_no_threads


def run(bound=None, ahead=True, lr=1e-3):
    torch.manual_seed(0)
    data = synthetic_events(1200, 80)
    sampler = RecentNeighborSampler(data, 5)
    model = build_event_tgn(data.num_nodes, data.msg.size(-1), sampler, memory_dim=16,
                            time_dim=16, embedding_dim=16, lr=lr)
    kw = {} if bound is None else dict(memory=model.memory, staleness_bound=bound,
                                       schedule="fixed")
    loader = TemporalDataLoader(data, batch_size=100, neg_sampling_ratio=1.0, prefetch=2,
                                neighbor_loader=sampler if ahead else None, **kw)
    torch.manual_seed(1)
    losses = [loss for loss, _ in event_train_steps(model, loader, data)]
    return losses, model.memory.memory.clone(), loader


def test_sample_drawn_ahead_gives_the_same_run():
    losses, memory, _ = run(ahead=False)
    losses_ahead, memory_ahead, loader = run()
    batch = next(iter(TemporalDataLoader(loader.data, batch_size=10, neg_sampling_ratio=1.0,
                                         prefetch=2, neighbor_loader=RecentNeighborSampler(
                                             loader.data, 5))))
    assert batch.recent_nbr.shape == (30, 5)  # sources, destinations, negatives
    assert losses_ahead == losses
    assert torch.equal(memory_ahead, memory)
    assert not wait_no_threads()


@pytest.mark.parametrize("bound", [0, 2])
def test_recipe_under_the_pipeline(bound):
    lr = 1e-3 if bound == 0 else 0.0
    losses, memory, _ = run(ahead=False, lr=lr)
    losses_p, memory_p, loader = run(bound, lr=lr)
    summary = loader.stats.summary()
    assert summary["max_staleness"] == bound  # the prepared fetches were used
    assert torch.equal(memory_p, memory)  # s=0: the sequential run; s=2 frozen: its memory
    if bound == 0:
        assert losses_p == losses
    assert not wait_no_threads()
