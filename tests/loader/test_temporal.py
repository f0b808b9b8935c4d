"""TemporalDataLoader: PyG's batches, prefetching, run-ahead sampling, lifecycle."""
import threading
import time
import traceback

import pytest
import torch
from torch_geometric.data import TemporalData
from torch_geometric.loader import TemporalDataLoader as PyGLoader

import pyg_mspipe.loader._epochs
import pyg_mspipe.loader.temporal
import pyg_mspipe.nn._update
from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.loader._batches import TemporalBatches

from ..helpers import random_stream, wait_no_threads

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


def _main_thread_samples(monkeypatch):
    # Neighbour samples computed on the training thread (the others run ahead
    # in the loader's background thread).
    calls = []
    real = LastNeighborLoader.sample

    def counting(self, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LastNeighborLoader, "sample", counting)
    return calls


def test_neighbor_loader_is_explicit(monkeypatch):
    """Only the neighbour loader passed to the loader is sampled ahead;
    another one existing in the process changes nothing."""
    data = make_data()
    calls = _main_thread_samples(monkeypatch)
    nl = LastNeighborLoader(50, 4)
    for batch in TemporalDataLoader(data, 25, 1.0, prefetch=2, neighbor_loader=nl):
        nl(batch.n_id)
        nl.insert(batch.src, batch.dst)
    assert not calls  # every sample was prepared ahead
    other = LastNeighborLoader(50, 4)  # noqa: F841 - a second live one
    nl.reset_state()
    for batch in TemporalDataLoader(data, 25, 1.0, prefetch=2, neighbor_loader=nl):
        nl(batch.n_id)
        nl.insert(batch.src, batch.dst)
    assert not calls
    nl.reset_state()
    for batch in TemporalDataLoader(data, 25, 1.0, prefetch=2):  # none given: none prepared
        nl(batch.n_id)
        nl.insert(batch.src, batch.dst)
    assert len(calls) == len(TemporalDataLoader(data, 25, prefetch=0))


def test_prepared_sample_survives_a_copy_of_the_batch(monkeypatch):
    """Prepared work is matched by value: a copy of the batch (PyG's
    PrefetchLoader, a .to() that copies) still gets it."""
    data = make_data()
    calls = _main_thread_samples(monkeypatch)
    nl = LastNeighborLoader(50, 4)
    ref = LastNeighborLoader(50, 4)
    for batch in TemporalDataLoader(data, 25, 1.0, prefetch=2, neighbor_loader=nl):
        copy_ = batch.clone()
        for x, y in zip(nl(copy_.n_id), ref.sample(batch.n_id)):
            assert torch.equal(x, y)
        nl.insert(copy_.src, copy_.dst)
        ref.insert(batch.src, batch.dst)
    assert len(calls) == len(TemporalDataLoader(data, 25, prefetch=0))  # only ref's
    assert torch.equal(nl.e_id, ref.e_id) and torch.equal(nl.neighbors, ref.neighbors)


def test_num_workers_with_default_prefetch():
    """Valid PyG code: num_workers > 0 with the default prefetch loads in
    worker processes, as PyG does (it used to raise ValueError)."""
    data = make_data(200)
    ours = list(TemporalDataLoader(data, 32, num_workers=2))
    ref = list(PyGLoader(data, 32))
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert torch.equal(a.src, b.src) and torch.equal(a.n_id, b.n_id)


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
    original = TemporalBatches.slice

    def poisoned(self, start, generator):
        if start >= 64:
            raise ZeroDivisionError("injected fault in batch preparation")
        return original(self, start, generator)

    monkeypatch.setattr(TemporalBatches, "slice", poisoned)
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

    class Broken(LastNeighborLoader):
        def sample(self, n_id, assoc=None):
            raise RuntimeError("injected sampler fault")

    nl = Broken(50, 4)
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


def test_memory_through_a_prefetching_loader_is_identical():
    """The memory plans each batch itself (the loader prepares no plan for
    it): a copy of the batch, or the batch itself, gives the same numbers."""
    from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory

    data = make_data()
    torch.manual_seed(0)
    mem = TGNMemory(50, 5, 8, 8, IdentityMessage(5, 8, 8), LastAggregator())
    ref = TGNMemory(50, 5, 8, 8, IdentityMessage(5, 8, 8), LastAggregator())
    ref.load_state_dict(mem.state_dict())
    loader = TemporalDataLoader(data, 25, 1.0, memory=mem, neighbor_loader=None, prefetch=2)
    for batch in loader:
        n_id = batch.n_id
        torch.testing.assert_close(mem(n_id), ref(n_id), rtol=0, atol=0)
        copy_ = batch.clone()
        mem.update_state(copy_.src, copy_.dst, copy_.t, copy_.msg)
        ref.update_state(batch.src, batch.dst, batch.t, batch.msg)
        mem.detach()
        ref.detach()
    assert torch.equal(mem.memory, ref.memory) and torch.equal(mem.last_update, ref.last_update)


def test_auto_prefetch_follows_spare_cores(monkeypatch):
    data = make_data()
    loader = TemporalDataLoader(data, 32, neighbor_loader=None, memory=None)
    monkeypatch.setattr(pyg_mspipe.loader.temporal, "usable_cores", lambda: torch.get_num_threads())
    assert loader.resolve_prefetch() == 0  # every core busy in the training thread
    monkeypatch.setattr(pyg_mspipe.loader.temporal, "usable_cores",
                        lambda: torch.get_num_threads() + 2)
    assert loader.resolve_prefetch() == 2
    assert TemporalDataLoader(data, 32, prefetch=3).resolve_prefetch() == 3
