"""Property-based fuzzing: random streams (random sizes, repeated nodes, equal
timestamps, bursts) through TGNMemory and the loaders, against PyG and
brute-force references."""
import torch
import torch_geometric.nn.models.tgn as pyg_tgn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import TemporalData

import pyg_mspipe
from pyg_mspipe import LastNeighborLoader, TemporalDataLoader, TGNMemory

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def streams(draw, max_nodes=12, max_batches=8, max_batch=12):
    num_nodes = draw(st.integers(2, max_nodes))
    sizes = draw(st.lists(st.integers(1, max_batch), min_size=1, max_size=max_batches))
    node = st.integers(0, num_nodes - 1)
    batches, t = [], 0
    for size in sizes:
        hot = draw(node)  # bursts: one node in many events of a batch
        src = [draw(st.one_of(node, st.just(hot))) for _ in range(size)]
        dst = [draw(node) for _ in range(size)]
        steps = [draw(st.integers(0, 3)) for _ in range(size)]  # 0: equal timestamps
        ts = []
        for step in steps:
            t += step
            ts.append(t)
        batches.append((torch.tensor(src), torch.tensor(dst), torch.tensor(ts)))
    return num_nodes, batches


@SETTINGS
@given(streams(), st.sampled_from(["last", "mean"]), st.integers(0, 2**31 - 1),
       st.lists(st.booleans(), min_size=8, max_size=8))
def test_memory_matches_pyg(stream, aggr, seed, eval_mask):
    num_nodes, batches = stream
    dim, mem_dim, time_dim = 3, 5, 4
    torch.manual_seed(seed)
    pyg_aggr = pyg_tgn.MeanAggregator() if aggr == "mean" else pyg_mspipe.LastAggregator()
    ours_aggr = pyg_mspipe.MeanAggregator() if aggr == "mean" else pyg_mspipe.LastAggregator()
    # Built under a float64 default (PyG's .double() leaves its empty message
    # store in float32 and then fails).
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref = pyg_tgn.TGNMemory(num_nodes, dim, mem_dim, time_dim,
                                pyg_tgn.IdentityMessage(dim, mem_dim, time_dim), pyg_aggr)
        ours = TGNMemory(num_nodes, dim, mem_dim, time_dim,
                         pyg_mspipe.IdentityMessage(dim, mem_dim, time_dim), ours_aggr)
    finally:
        torch.set_default_dtype(old)
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(seed)
    for i, (src, dst, t) in enumerate(batches):
        msg = torch.randn(src.numel(), dim, generator=g, dtype=torch.float64)
        training = not eval_mask[i % len(eval_mask)]
        with torch.no_grad():
            ref.train(training)
            ours.train(training)
            n_id = torch.randint(0, num_nodes, (5,), generator=g).unique()
            for a, b in zip(ref(n_id), ours(n_id)):
                torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-9)
            ref.update_state(src, dst, t, msg)
            ours.update_state(src, dst, t, msg)
        torch.testing.assert_close(ours.memory, ref.memory, atol=1e-9, rtol=1e-9)
        assert torch.equal(ours.last_update, ref.last_update)


@SETTINGS
@given(streams(max_batch=20), st.integers(1, 4))
def test_neighbor_loader_keeps_most_recent(stream, size):
    num_nodes, batches = stream
    ours = LastNeighborLoader(num_nodes, size)
    ref = pyg_tgn.LastNeighborLoader(num_nodes, size)
    history = {v: [] for v in range(num_nodes)}
    e = 0
    overflowed = False
    for src, dst, _ in batches:
        counts = torch.bincount(torch.cat([src, dst]), minlength=num_nodes)
        overflowed |= bool(counts.max() > size)
        n_id = torch.arange(num_nodes)
        if not overflowed:  # PyG is exact until a node overflows in a batch
            for a, b in zip(ref(n_id), ours(n_id)):
                assert torch.equal(a, b)
        ours.insert(src, dst)
        ref.insert(src, dst)
        for s, d in zip(src.tolist(), dst.tolist()):
            history[d].append((e, s))
            history[s].append((e, d))
            e += 1
        for v in range(num_nodes):
            want = sorted(history[v], reverse=True)[:size]
            got = sorted(((int(i), int(n)) for i, n in zip(ours.e_id[v], ours.neighbors[v])
                          if i >= 0), reverse=True)
            assert got == want


@SETTINGS
@given(streams(max_batches=6), st.integers(1, 9), st.integers(1, 3),
       st.floats(0, 2), st.integers(0, 2**31 - 1))
def test_loader_prefetch_identical_to_sequential(stream, batch_size, prefetch, ratio, seed):
    _, batches = stream
    src = torch.cat([b[0] for b in batches])
    dst = torch.cat([b[1] for b in batches])
    t = torch.cat([b[2] for b in batches])
    data = TemporalData(src=src, dst=dst, t=t, msg=torch.zeros(src.numel(), 2))
    runs = []
    for depth in (0, prefetch):
        loader = TemporalDataLoader(data, batch_size, ratio, prefetch=depth,
                                    neighbor_loader=None, memory=None,
                                    generator=torch.Generator().manual_seed(seed))
        runs.append([(b.src, b.dst, b.t, getattr(b, "neg_dst", None), b.n_id)
                     for b in loader])
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        for x, y in zip(a, b):
            assert (x is None and y is None) or torch.equal(x, y)
