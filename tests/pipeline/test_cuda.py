"""The pipeline on a GPU: copy stream, events, pinned staging, host-resident
memory. Skipped without CUDA (none was available when these were written:
they have not run yet)."""
import pytest
import torch

from .common import make_data, train

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(300)]


def cuda_data(**kwargs):
    return make_data(**kwargs).to("cuda")


def test_staleness_zero_equals_sequential_on_cuda():
    data = cuda_data()
    ref = train(data, epochs=2)
    got = train(data, epochs=2, staleness_bound=0)
    torch.testing.assert_close(torch.tensor(got[0]), torch.tensor(ref[0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=0)
    assert torch.equal(got[2], ref[2])
    assert got[3].summary()["max_staleness"] == 0


@pytest.mark.parametrize("storage", [None, "cpu"])
@pytest.mark.parametrize("bound", [1, 4])
def test_frozen_parameters_no_update_lost_on_cuda(bound, storage):
    data = cuda_data()
    kwargs = {} if storage is None else {"memory_kwargs": {"storage": storage}}
    ref = train(data, lr=0.0)
    got = train(data, lr=0.0, staleness_bound=bound, schedule="fixed", **kwargs)
    assert got[4].memory.memory.device.type == ("cuda" if storage is None else "cpu")
    if storage == "cpu" and torch.cuda.is_available():
        assert got[4].memory.memory.is_pinned()
    torch.testing.assert_close(got[1].cuda(), ref[1], atol=1e-5, rtol=0)
    assert torch.equal(got[2].cuda(), ref[2])
    assert max(got[3].staleness()) <= bound


def test_host_storage_sequential_matches_device_storage():
    data = cuda_data()
    ref = train(data)
    got = train(data, memory_kwargs={"storage": "cpu"})
    torch.testing.assert_close(torch.tensor(got[0]), torch.tensor(ref[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1].cuda(), ref[1], atol=1e-5, rtol=0)


def test_prefetch_to_cuda_with_data_already_on_the_gpu():
    """Issue 10, defect 4: the loader pinned every batch, which fails for
    data already on the GPU; only host tensors are pinned now."""
    from pyg_mspipe import TemporalDataLoader

    data = cuda_data()
    batches = list(TemporalDataLoader(data, 25, 1.0, prefetch=2, device="cuda"))
    ref = list(TemporalDataLoader(data, 25, 1.0, prefetch=0,
                                  generator=torch.Generator("cuda").manual_seed(0)))
    assert len(batches) == len(ref)
    assert all(b.src.is_cuda and b.n_id.is_cuda for b in batches)


def test_host_storage_stays_pinned_when_the_store_grows_and_loads():
    """Issue 10, defect 4: host-resident state stays pinned after the message
    arena grows and after a checkpoint loads."""
    data = make_data(num_events=3000)
    got = train(data.to("cuda"), memory_kwargs={"storage": "cpu"})
    memory = got[4].memory
    store = memory.msg_store
    assert store.capacity > 1024  # the arena grew
    for buf in (memory.memory, memory.last_update, store.msg, store.other, store.t):
        assert buf.device.type == "cpu" and buf.is_pinned()
    memory.load_state_dict(memory.state_dict())
    for buf in (memory.memory, memory.last_update, store.msg, store.other, store.t):
        assert buf.is_pinned()
