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
