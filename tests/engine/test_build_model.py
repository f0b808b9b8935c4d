import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.models import MODELS, build_model
from pyg_mspipe.engine.training import evaluate, train_epoch

from ..helpers import random_stream

NUM_NODES, MSG_DIM = 30, 4


def data():
    src, dst, t, msg = random_stream(NUM_NODES, 160, MSG_DIM, seed=1)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_trains_and_evaluates(name):
    torch.manual_seed(0)
    events = data()
    model = build_model(name, NUM_NODES, MSG_DIM, memory_dim=8, time_dim=8, embedding_dim=8,
                        lr=1e-2, mailbox_size=3, num_neighbors=3)
    assert model.name == name
    nl = LastNeighborLoader(NUM_NODES, size=4) if model.needs_neighbors else None
    train, test = events[:120], events[120:]
    before = [p.detach().clone() for p in model.memory.parameters()]
    loss = train_epoch(model, TemporalDataLoader(train, batch_size=20, neg_sampling_ratio=1.0),
                       nl, events)
    assert loss == loss and loss > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.memory.parameters()))
    ap, auc = evaluate(model, TemporalDataLoader(test, batch_size=20, neg_sampling_ratio=1.0),
                       nl, events)
    assert 0.0 <= ap <= 1.0 and 0.0 <= auc <= 1.0


def test_build_model_rejects_unknown_names_and_missing_neighbors():
    with pytest.raises(ValueError, match="unknown model 'tgat'"):
        build_model("tgat", NUM_NODES, MSG_DIM)
    model = build_model("tgn", NUM_NODES, MSG_DIM, memory_dim=8, time_dim=8, embedding_dim=8)
    with pytest.raises(ValueError, match="neighbor_loader"):
        train_epoch(model, TemporalDataLoader(data()[:40], batch_size=20,
                                              neg_sampling_ratio=1.0), None, data())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_evaluation_protocol_gives_the_example_numbers_for_each_model(name):
    from pyg_mspipe.engine.evaluation import evaluate_link_prediction
    events = data()
    results = []
    for evaluate_fn in (evaluate, evaluate_link_prediction):
        torch.manual_seed(0)
        model = build_model(name, NUM_NODES, MSG_DIM, memory_dim=8, time_dim=8,
                            embedding_dim=8, mailbox_size=3, num_neighbors=3)
        nl = LastNeighborLoader(NUM_NODES, size=4) if model.needs_neighbors else None
        train_epoch(model, TemporalDataLoader(events[:100], batch_size=20,
                                              neg_sampling_ratio=1.0), nl, events)
        out = evaluate_fn(model, TemporalDataLoader(events[100:], batch_size=20,
                                                    neg_sampling_ratio=1.0), nl, events)
        results.append(out if isinstance(out, tuple) else (out["ap"], out["auc"]))
        results.append(model.memory.memory.clone())
    assert results[0] == results[2]
    assert torch.equal(results[1], results[3])
