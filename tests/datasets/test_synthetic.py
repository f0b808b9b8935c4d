"""The synthetic stream: seeded, sorted, power-law node activity."""
import pytest
import torch

from pyg_mspipe.datasets import synthetic, synthetic_events


def test_shape_types_and_order():
    data = synthetic_events(5000, 300, msg_dim=8, seed=1)
    assert data.num_events == 5000 and data.msg.shape == (5000, 8)
    assert data.src.dtype == data.dst.dtype == data.t.dtype == torch.long
    assert data.msg.dtype == torch.float32
    assert int(data.src.min()) >= 0 and int(torch.maximum(data.src, data.dst).max()) < 300
    assert int(data.t[0]) == 0 and bool((data.t[1:] >= data.t[:-1]).all())
    assert not bool((data.src == data.dst).any())
    # a Poisson process of rate 1: about one time unit per event
    assert 4500 < int(data.t[-1]) < 5500


def test_seeded():
    a, b = synthetic_events(3000, 100, seed=4), synthetic_events(3000, 100, seed=4)
    assert all(torch.equal(a[key], b[key]) for key in ("src", "dst", "t", "msg"))
    c = synthetic_events(3000, 100, seed=5)
    assert not torch.equal(a.src, c.src) and not torch.equal(a.msg, c.msg)


def top_share(data, num_nodes, fraction=0.01):
    counts = torch.bincount(torch.cat([data.src, data.dst]), minlength=num_nodes)
    top = counts.sort(descending=True).values[:max(1, int(num_nodes * fraction))]
    return float(top.sum()) / float(counts.sum())


def test_power_law_activity():
    nodes = 2000
    # Zipf(1) over 2000 nodes: the top 20 ranks hold H(20) / H(2000) ~ 44%
    share = top_share(synthetic_events(40000, nodes, msg_dim=0, seed=0), nodes)
    assert 0.35 < share < 0.55
    assert top_share(synthetic_events(40000, nodes, alpha=0.0, msg_dim=0), nodes) < 0.03
    steeper = top_share(synthetic_events(40000, nodes, alpha=1.5, msg_dim=0), nodes)
    assert steeper > share
    # which node is popular is a seeded permutation, not node 0
    counts = torch.bincount(synthetic_events(40000, nodes, msg_dim=0, seed=0).src)
    assert int(counts.argmax()) != 0


def test_chunks_join_up(monkeypatch):
    whole = synthetic_events(2500, 40, seed=2)
    monkeypatch.setattr(synthetic, "CHUNK", 1000)
    chunked = synthetic_events(2500, 40, seed=2)
    assert bool((chunked.t[1:] >= chunked.t[:-1]).all()) and int(chunked.t[0]) == 0
    assert 2200 < int(chunked.t[-1]) < 2800  # time runs on across chunks
    assert not bool((chunked.src == chunked.dst).any())
    assert chunked.msg.shape == whole.msg.shape


def test_dense_mode():
    data = synthetic_events(1000, 2, msg_dim=1)
    assert sorted(set(zip(data.src.tolist(), data.dst.tolist()))) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("kwargs,message", [
    ({"num_events": 0, "num_nodes": 5}, "'num_events' must be an integer >= 1 (got 0)"),
    ({"num_events": 5, "num_nodes": 1}, "'num_nodes' must be an integer >= 2 (got 1)"),
    ({"num_events": 5, "num_nodes": 5, "msg_dim": -1}, "'msg_dim' must be an integer >= 0"),
    ({"num_events": 5.0, "num_nodes": 5}, "'num_events' must be an integer >= 1 (got 5.0)"),
    ({"num_events": 5, "num_nodes": 5, "alpha": float("nan")}, "'alpha' must be a finite"),
    ({"num_events": 5, "num_nodes": 5, "seed": -1}, "'seed' must be an integer >= 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        synthetic_events(**kwargs)
