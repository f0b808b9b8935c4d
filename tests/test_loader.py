"""TemporalDataLoader: PyG's batches, prefetching, run-ahead sampling, lifecycle."""
import gc
import threading
import time
import traceback

import pytest
import torch
from torch_geometric.data import TemporalData
from torch_geometric.loader import TemporalDataLoader as PyGLoader

import pyg_mspipe.loader
from pyg_mspipe import LastNeighborLoader, TemporalDataLoader

from .helpers import random_stream, wait_no_threads

pytestmark = pytest.mark.timeout(60)


def make_data(num_events=300, num_nodes=50, seed=0):
    src, dst, t, msg = random_stream(num_nodes, num_events, 5, seed=seed)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


def batches_equal(a, b):
    for key in ("src", "dst", "t", "msg", "neg_dst", "n_id"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


def test_prefetch_zero_reproduces_pyg_exactly():
    data = make_data()
    torch.manual_seed(5)
    ref = list(PyGLoader(data, batch_size=32, neg_sampling_ratio=1.0))
    torch.manual_seed(5)
    ours = list(TemporalDataLoader(data, batch_size=32, neg_sampling_ratio=1.0, prefetch=0))
    assert len(ref) == len(ours)
    for a, b in zip(ref, ours):
        batches_equal(a, b)


def test_drop_last_like_pyg():
    data = make_data(100)
    assert len(list(TemporalDataLoader(data, batch_size=30, drop_last=True, prefetch=0))) == \
        len(list(PyGLoader(data, batch_size=30, drop_last=True)))


@pytest.mark.parametrize("prefetch", [1, 3])
def test_prefetch_equals_prefetch_zero_with_same_generator(prefetch):
    data = make_data()
    a = list(TemporalDataLoader(data, 32, 1.0, prefetch=0, neighbor_loader=None,
                                generator=torch.Generator().manual_seed(1)))
    b = list(TemporalDataLoader(data, 32, 1.0, prefetch=prefetch, neighbor_loader=None,
                                generator=torch.Generator().manual_seed(1)))
    for x, y in zip(a, b):
        batches_equal(x, y)
    assert not wait_no_threads()


def test_prefetching_is_reproducible_from_manual_seed_and_spares_the_global_rng():
    data = make_data()
    loader = TemporalDataLoader(data, 32, 1.0, neighbor_loader=None, prefetch=2)
    torch.manual_seed(3)
    first = list(loader)
    after_first = torch.rand(1)
    torch.manual_seed(3)
    second = list(loader)
    for x, y in zip(first, second):
        batches_equal(x, y)
    # An epoch takes exactly the one draw of the global RNG that any torch
    # DataLoader iterator takes (when it starts).
    torch.manual_seed(3)
    torch.empty((), dtype=torch.int64).random_()
    assert torch.equal(torch.rand(1), after_first)


def test_prefetch_consumes_the_global_rng_like_prefetch_zero():
    data = make_data()
    states = []
    for prefetch in (0, 2):
        torch.manual_seed(4)
        for _ in TemporalDataLoader(data, 32, 1.0, prefetch=prefetch, neighbor_loader=None,
                                    generator=torch.Generator().manual_seed(0)):
            pass
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])


def test_run_ahead_sample_is_used_and_equals_sequential():
    data = make_data()
    nl = LastNeighborLoader(50, 4)
    ref_nl = LastNeighborLoader(50, 4)
    loader = TemporalDataLoader(data, 25, 1.0, neighbor_loader=nl, prefetch=2, edge_data=data)
    calls = {"sync": 0}
    real_sample = nl.sample
    nl.sample = lambda *a, **k: calls.__setitem__("sync", calls["sync"] + 1) or real_sample(*a, **k)
    for _ in range(2):
        nl.reset_state()
        ref_nl.reset_state()
        for batch in loader:
            got = nl(batch.n_id)
            want = ref_nl.sample(batch.n_id)
            for x, y in zip(got, want):
                assert torch.equal(x, y)
            assert torch.equal(batch.neighbor_t, data.t[got[2]])
            assert torch.equal(batch.neighbor_msg, data.msg[got[2]])
            nl.insert(batch.src, batch.dst)
            ref_nl.insert(batch.src, batch.dst)
            assert torch.equal(nl.e_id, ref_nl.e_id)  # no double insert
    assert calls["sync"] == 0  # every sample came from the background thread
    assert not wait_no_threads()


def test_run_ahead_falls_back_when_the_loop_diverges():
    data = make_data()
    nl = LastNeighborLoader(50, 4)
    ref_nl = LastNeighborLoader(50, 4)
    for i, batch in enumerate(TemporalDataLoader(data, 25, 1.0, neighbor_loader=nl, prefetch=2)):
        if i == 3:  # an extra, foreign insert: prepared samples no longer apply
            nl.insert(torch.tensor([1]), torch.tensor([2]))
            ref_nl.insert(torch.tensor([1]), torch.tensor([2]))
        for x, y in zip(nl(batch.n_id), ref_nl.sample(batch.n_id)):
            assert torch.equal(x, y)
        if i % 2 == 0:  # skipping some inserts is fine too
            nl.insert(batch.src, batch.dst)
            ref_nl.insert(batch.src, batch.dst)


def test_auto_picks_the_only_neighbor_loader():
    gc.collect()  # neighbour loaders of earlier tests
    data = make_data()
    nl = LastNeighborLoader(50, 4)
    loader = TemporalDataLoader(data, 25, 1.0, prefetch=2)  # neighbor_loader="auto"
    it = iter(loader)
    batch = next(it)
    assert nl._prepared is not None and nl._prepared[0] is batch.n_id
    it.close()
    second = LastNeighborLoader(50, 4)  # two live: ambiguous, none is used
    batch = next(iter(loader))
    assert second._prepared is None
    del nl, second


def test_break_leaves_no_thread():
    data = make_data(2000)
    loader = TemporalDataLoader(data, 10, 1.0, prefetch=4, neighbor_loader=None)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    assert not wait_no_threads()


def test_new_epoch_restarts_cleanly():
    data = make_data()
    loader = TemporalDataLoader(data, 32, 1.0, generator=torch.Generator().manual_seed(0),
                                neighbor_loader=None, prefetch=2)
    it = iter(loader)
    next(it)
    next(it)
    del it  # abandoned mid-epoch
    assert len(list(loader)) == len(list(PyGLoader(data, 32)))
    assert not wait_no_threads()


def test_worker_exception_surfaces_promptly_with_traceback(monkeypatch):
    data = make_data()
    original = TemporalDataLoader._make_batch

    def poisoned(self, start, generator):
        if start >= 64:
            raise ZeroDivisionError("injected fault in batch preparation")
        return original(self, start, generator)

    monkeypatch.setattr(TemporalDataLoader, "_make_batch", poisoned)
    loader = TemporalDataLoader(data, 32, 1.0, neighbor_loader=None, prefetch=2)
    seen = 0
    start = time.monotonic()
    with pytest.raises(ZeroDivisionError, match="injected fault") as info:
        for _ in loader:
            seen += 1
    assert time.monotonic() - start < 1.0
    assert seen == 2
    frames = "".join(traceback.format_tb(info.value.__traceback__))
    assert "poisoned" in frames  # the worker's original traceback
    assert not wait_no_threads()


def test_sampler_exception_in_worker_surfaces(monkeypatch):
    data = make_data()
    nl = LastNeighborLoader(50, 4)

    def broken(self, src, dst):
        raise RuntimeError("injected sampler fault")

    monkeypatch.setattr(LastNeighborLoader, "_insert", broken)
    with pytest.raises(RuntimeError, match="injected sampler fault"):
        for _ in TemporalDataLoader(data, 32, 1.0, neighbor_loader=nl, prefetch=2):
            pass
    assert not wait_no_threads()


def test_keyboard_interrupt_in_loop_leaves_no_thread():
    data = make_data(2000)
    loader = TemporalDataLoader(data, 10, 1.0, prefetch=3, neighbor_loader=None)
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(loader):
            if i == 5:
                raise KeyboardInterrupt
    assert not wait_no_threads()


def test_slow_consumer_does_not_block_shutdown():
    data = make_data(2000)
    it = iter(TemporalDataLoader(data, 10, 1.0, prefetch=1, neighbor_loader=None))
    next(it)
    time.sleep(0.2)  # the worker is now blocked on a full queue
    start = time.monotonic()
    it.close()
    assert time.monotonic() - start < 1.0
    assert not wait_no_threads()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), TypeError, "batch_size"),
    (dict(neg_sampling_ratio=-1.0), ValueError, "neg_sampling_ratio"),
    (dict(prefetch=-1), ValueError, "prefetch"),
    (dict(prefetch=2, num_workers=2), ValueError, "num_workers"),
    (dict(prefetch="yes"), TypeError, "prefetch"),
    (dict(neighbor_loader="yes"), TypeError, "neighbor_loader"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TemporalDataLoader(make_data(), **kwargs)


def test_bad_data():
    data = make_data()
    data.t = data.t.flip(0)
    with pytest.raises(ValueError, match="not sorted"):
        TemporalDataLoader(data, 10)
    data = make_data()
    data.msg[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TemporalDataLoader(data, 10)
    with pytest.raises(TypeError, match="TemporalData"):
        TemporalDataLoader({"src": 1}, 10)


def test_module_exports():
    assert "TemporalDataLoader" in pyg_mspipe.loader.__all__


def test_edge_data_must_cover_sampled_event_ids():
    data = make_data()
    nl = LastNeighborLoader(50, 4)
    for batch in TemporalDataLoader(data[:100], 25, neighbor_loader=nl, prefetch=2):
        nl.insert(batch.src, batch.dst)
    later = data[100:200]
    with pytest.raises(IndexError, match="whole stream"):
        for batch in TemporalDataLoader(later, 25, neighbor_loader=nl, edge_data=later, prefetch=2):
            nl(batch.n_id)
            nl.insert(batch.src, batch.dst)
    assert not wait_no_threads()
    for batch in TemporalDataLoader(later, 25, neighbor_loader=nl, edge_data=data, prefetch=2):
        assert torch.equal(batch.neighbor_t, data.t[nl(batch.n_id)[2]])
        nl.insert(batch.src, batch.dst)


def test_memory_update_prepared_ahead_and_identical():
    from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory

    data = make_data()
    torch.manual_seed(0)
    mem = TGNMemory(50, 5, 8, 8, IdentityMessage(5, 8, 8), LastAggregator())
    ref = TGNMemory(50, 5, 8, 8, IdentityMessage(5, 8, 8), LastAggregator())
    ref.load_state_dict(mem.state_dict())
    on_main = []
    real_plan = mem._plan_update

    def counting(*args):
        if threading.current_thread() is threading.main_thread():
            on_main.append(1)
        return real_plan(*args)

    mem._plan_update = counting
    loader = TemporalDataLoader(data, 25, 1.0, memory=mem, neighbor_loader=None, prefetch=2)
    for batch in loader:
        n_id = batch.n_id
        torch.testing.assert_close(mem(n_id), ref(n_id), rtol=0, atol=0)
        mem.update_state(batch.src, batch.dst, batch.t, batch.msg)
        ref.update_state(batch.src, batch.dst, batch.t, batch.msg)
        mem.detach()
        ref.detach()
    assert not on_main
    assert torch.equal(mem.memory, ref.memory) and torch.equal(mem.last_update, ref.last_update)
    # A batch the loader did not prepare (or a modified one) is computed on the spot.
    batch = data[:5]
    batch.t = batch.t + 10**6
    mem.update_state(batch.src, batch.dst, batch.t, batch.msg)
    assert on_main


def test_auto_prefetch_follows_spare_cores(monkeypatch):
    data = make_data()
    loader = TemporalDataLoader(data, 32, neighbor_loader=None, memory=None)
    monkeypatch.setattr(pyg_mspipe.loader, "_usable_cores", lambda: torch.get_num_threads())
    assert loader.resolve_prefetch() == 0  # every core busy in the training thread
    monkeypatch.setattr(pyg_mspipe.loader, "_usable_cores",
                        lambda: torch.get_num_threads() + 2)
    assert loader.resolve_prefetch() == 2
    assert TemporalDataLoader(data, 32, prefetch=3).resolve_prefetch() == 3
