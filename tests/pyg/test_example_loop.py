"""PyG's examples/tgn.py loop with PyG's classes and with ours (imports swapped).

How the comparison is made meaningful: PyG draws negatives and dropout masks
from the same global RNG, so a prefetcher cannot replay its draws. PyG's loop
is fed the same negatives as ours: its own loader class and collate code, with
the negative draws taken from a generator (the global RNG state is swapped in
and out around each draw), so the global RNG serves dropout alone in both
loops (dropout 0.1, as in the example). Our loaders get a generator seeded
the same way and prefetch and sample ahead in the background (prefetch=2).
"""

import pytest
import torch
import torch_geometric.loader
import torch_geometric.nn
from torch_geometric.data import TemporalData
from torch_geometric.nn.models import tgn as pyg_tgn

import pyg_mspipe
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch

pytestmark = pytest.mark.timeout(240)

NUM_NODES, BATCH, SIZE = 120, 20, 10


def stream(seed=0, num_events=600):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, NUM_NODES // 2, (num_events,), generator=g)
    dst = torch.randint(NUM_NODES // 2, NUM_NODES, (num_events,), generator=g)
    t = torch.randint(0, 5, (num_events,), generator=g).cumsum(0)
    msg = torch.randn(num_events, 6, generator=g, dtype=torch.get_default_dtype())
    data = TemporalData(src=src, dst=dst, t=t, msg=msg)
    # No node gets more than SIZE events in one batch: PyG is exact there.
    for i in range(0, num_events, BATCH):
        ids = torch.cat([src[i:i + BATCH], dst[i:i + BATCH]])
        assert torch.bincount(ids).max() <= SIZE
    return data


class PyGLoaderSameNegatives(torch_geometric.loader.TemporalDataLoader):
    """PyG's TemporalDataLoader whose negatives come from `generator`."""

    def __init__(self, *args, generator, **kwargs):
        super().__init__(*args, **kwargs)
        self.neg_generator = generator

    def __call__(self, arange):
        with torch.random.fork_rng():
            torch.set_rng_state(self.neg_generator.get_state())
            batch = super().__call__(arange)
            self.neg_generator.set_state(torch.get_rng_state())
        return batch


def run(classes, memory_cls, seed=7, epochs=2, **train_kwargs):
    loader_cls, nl_cls = classes
    data = stream()
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    torch.manual_seed(0)
    model = build_tgn(NUM_NODES, data.msg.size(-1), memory_cls=memory_cls,
                      memory_dim=16, time_dim=16, embedding_dim=16, lr=1e-3)
    neighbor_loader = nl_cls(NUM_NODES, size=SIZE)
    ours = loader_cls is pyg_mspipe.TemporalDataLoader
    sync_samples = []
    if ours:  # count samples not prepared ahead (there must be none)
        real_sample = neighbor_loader.sample
        neighbor_loader.sample = lambda *a: sync_samples.append(1) or real_sample(*a)
    gens = [torch.Generator() for _ in range(2)]
    extra = [dict(generator=g) for g in gens]
    if ours:  # the parts to prepare ahead, passed explicitly
        memory = model.memory if isinstance(model.memory, pyg_mspipe.TGNMemory) else None
        for kw in extra:
            kw.update(prefetch=2, neighbor_loader=neighbor_loader, memory=memory)
    train_loader = loader_cls(train_data, batch_size=BATCH, neg_sampling_ratio=1.0, **extra[0],
                              **train_kwargs)
    test_loader = loader_cls(test_data, batch_size=BATCH, neg_sampling_ratio=1.0, **extra[1])
    losses, aps = [], []
    for _ in range(epochs):
        torch.manual_seed(seed)
        gens[0].manual_seed(seed)
        train_epoch(model, train_loader, neighbor_loader, data, losses=losses)
        gens[1].manual_seed(12345)  # evaluate() seeds the global RNG with 12345
        aps.append(evaluate(model, test_loader, neighbor_loader, data))
    assert not sync_samples
    return losses, aps


PYG = (PyGLoaderSameNegatives, pyg_tgn.LastNeighborLoader)
OURS = (pyg_mspipe.TemporalDataLoader, pyg_mspipe.LastNeighborLoader)


def test_loaders_swapped_identical_losses_and_ap():
    """Same memory class: the loaders alone are swapped; bit-identical."""
    ref_losses, ref_aps = run(PYG, torch_geometric.nn.TGNMemory)
    our_losses, our_aps = run(OURS, torch_geometric.nn.TGNMemory)
    assert len(ref_losses) == len(our_losses) > 0
    assert our_losses == ref_losses
    assert our_aps == ref_aps


def test_all_imports_swapped_same_losses_and_ap():
    """Everything swapped (memory too), in float64: the same numbers up to
    round-off (the memory computes in a different order, see
    docs/pyg_differences.md)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref_losses, ref_aps = run(PYG, torch_geometric.nn.TGNMemory)
        our_losses, our_aps = run(OURS, pyg_mspipe.TGNMemory)
    finally:
        torch.set_default_dtype(old)
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(ref_losses),
                               atol=1e-9, rtol=0)
    torch.testing.assert_close(torch.tensor(our_aps), torch.tensor(ref_aps), atol=1e-9, rtol=0)


def test_pipeline_at_staleness_zero_equals_sequential():
    """staleness_bound=0 (memory fetch and write-back in the pipeline's
    worker): bit-identical to our sequential loop, and to PyG's up to
    round-off in float64."""
    seq_losses, seq_aps = run(OURS, pyg_mspipe.TGNMemory)
    pipe_losses, pipe_aps = run(OURS, pyg_mspipe.TGNMemory, staleness_bound=0)
    assert pipe_losses == seq_losses
    assert pipe_aps == seq_aps
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref_losses, ref_aps = run(PYG, torch_geometric.nn.TGNMemory)
        pipe_losses, pipe_aps = run(OURS, pyg_mspipe.TGNMemory, staleness_bound=0)
    finally:
        torch.set_default_dtype(old)
    torch.testing.assert_close(torch.tensor(pipe_losses), torch.tensor(ref_losses),
                               atol=1e-9, rtol=0)
    torch.testing.assert_close(torch.tensor(pipe_aps), torch.tensor(ref_aps), atol=1e-9, rtol=0)
