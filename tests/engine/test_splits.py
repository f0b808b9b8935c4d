"""Chronological splits: PyG's boundaries; the TGN paper's inductive split
against its definition written out event by event."""
import json

import numpy as np
import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.engine.splits import inductive_split, transductive_split


def random_stream(seed, num_events=400, num_nodes=60):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, num_events // 3, (num_events,), generator=g).sort().values
    return TemporalData(src=torch.randint(0, num_nodes, (num_events,), generator=g),
                        dst=torch.randint(0, num_nodes, (num_events,), generator=g),
                        t=t, msg=torch.randn(num_events, 3, generator=g))


def events(data):
    return list(zip(data.src.tolist(), data.dst.tolist(), data.t.tolist()))


@pytest.mark.parametrize("seed", range(3))
def test_transductive_is_pyg_split(seed):
    data = random_stream(seed)
    split = transductive_split(data, 0.2, 0.1)
    for ours, pyg in zip((split.train, split.val, split.test),
                         data.train_val_test_split(0.2, 0.1)):
        assert events(ours) == events(pyg) and torch.equal(ours.msg, pyg.msg)
    assert events(split.stream) == events(data) and split.masked_nodes.numel() == 0


@pytest.mark.parametrize("seed", range(6))
def test_inductive_split_is_tgn_definition(seed):
    data = random_stream(seed)
    split = inductive_split(data, 0.15, 0.15, new_node_ratio=0.1, seed=seed)
    # TGN's get_data, written out with Python sets and loops.
    ts = data.t.numpy()
    val_time, test_time = np.quantile(ts, [0.70, 0.85])
    stream = events(data)
    node_set = {u for u, _, _ in stream} | {v for _, v, _ in stream}
    test_node_set = {x for u, v, t in stream if t > val_time for x in (u, v)}
    masked = set(split.masked_nodes.tolist())
    assert len(masked) == split.masked_nodes.numel() == int(0.1 * len(node_set))
    assert masked <= test_node_set
    train = [(u, v, t) for u, v, t in stream
             if t <= val_time and u not in masked and v not in masked]
    train_nodes = {x for u, v, _ in train for x in (u, v)}
    assert not train_nodes & masked
    new_node_set = node_set - train_nodes
    val = [e for e in stream if val_time < e[2] <= test_time]
    test = [e for e in stream if e[2] > test_time]
    assert events(split.train) == train
    assert events(split.val) == val and events(split.test) == test
    assert set(split.new_nodes.tolist()) == new_node_set
    assert events(split.val_new) == [e for e in val if e[0] in new_node_set
                                     or e[1] in new_node_set]
    assert events(split.test_new) == [e for e in test if e[0] in new_node_set
                                      or e[1] in new_node_set]
    assert events(split.stream) == train + val + test
    kept = [i for i, (u, v, t) in enumerate(stream)
            if t > val_time or (u not in masked and v not in masked)]
    assert torch.equal(split.stream.msg, data.msg[kept])
    summary = json.loads(json.dumps(split.to_dict()))
    assert summary["num_train"] == len(train) and summary["protocol"] == "inductive"


def test_new_nodes_drawn_uniformly_and_seeded():
    data = random_stream(0, num_events=200, num_nodes=30)
    first = inductive_split(data, seed=7)
    assert torch.equal(first.masked_nodes, inductive_split(data, seed=7).masked_nodes)
    candidates = torch.cat([first.val.src, first.val.dst, first.test.src,
                            first.test.dst]).unique()
    counts = torch.zeros(30)
    draws = 600
    for seed in range(draws):
        counts[inductive_split(data, seed=seed).masked_nodes] += 1
    k = first.masked_nodes.numel()
    assert counts[~torch.isin(torch.arange(30), candidates)].sum() == 0
    expected = draws * k / candidates.numel()
    # Binomial counts: within 5 standard deviations of the uniform expectation.
    std = (draws * (k / candidates.numel()) * (1 - k / candidates.numel())) ** 0.5
    assert (counts[candidates] - expected).abs().max() < 5 * std


def test_bad_arguments():
    data = random_stream(0)
    with pytest.raises(ValueError, match="val_ratio"):
        transductive_split(data, val_ratio=1.2)
    with pytest.raises(ValueError, match="below 1"):
        inductive_split(data, 0.6, 0.5)
    with pytest.raises(ValueError, match="new_node_ratio"):
        inductive_split(data, new_node_ratio=-0.1)
    with pytest.raises(ValueError, match="distinct nodes"):
        inductive_split(data, 0.01, 0.01, new_node_ratio=0.9)
    with pytest.raises(TypeError, match="TemporalData"):
        inductive_split({"src": data.src})


@pytest.mark.parametrize("seed", range(4))
def test_dyglib_draw_is_dyglibs_code(seed):
    # DyGLib's get_link_prediction_data: random.seed(2020), then
    # random.sample over the set of the validation and test nodes (a set of
    # small ints iterates in increasing order; Python >= 3.11 needs the
    # sorted list, which is the same sequence).
    import random
    data = random_stream(seed)
    split = inductive_split(data, seed=2020 + seed, draw="dyglib")
    val_time = np.quantile(data.t.numpy(), 0.70)
    stream = events(data)
    test_node_set = {x for u, v, t in stream if t > val_time for x in (u, v)}
    node_set = {u for u, _, _ in stream} | {v for _, v, _ in stream}
    random.seed(2020 + seed)
    expected = set(random.sample(sorted(test_node_set), int(0.1 * len(node_set))))
    assert set(split.masked_nodes.tolist()) == expected
    assert split.masked_nodes.tolist() != inductive_split(data, seed=2020 + seed).masked_nodes.tolist()
    with pytest.raises(ValueError, match="draw"):
        inductive_split(data, draw="numpy")


def test_dyglib_draw_on_college_keeps_dyglibs_training_events():
    # DyGLib's own code on uci (= CollegeMsg, benchmarks/dyglib_uci.py)
    # prints: 34352 training events, 5002 new-node validation and 5932
    # new-node test events, 189 nodes kept out.
    from pyg_mspipe.engine.data import resolve_data
    from pyg_mspipe.engine.splits import DYGLIB_DRAW_SEED

    data = resolve_data("college", msg_dim=4, features="zeros")
    split = inductive_split(data, seed=DYGLIB_DRAW_SEED, draw="dyglib")
    assert split.masked_nodes.numel() == 189
    assert (split.train.num_events, split.val.num_events, split.test.num_events) == \
        (34352, 8975, 8976)
    assert (split.val_new.num_events, split.test_new.num_events) == (5002, 5932)
