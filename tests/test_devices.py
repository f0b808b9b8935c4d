"""No code path that only a GPU runs: the device-dependent choices of the
library, each taken on the CPU (the CUDA-only module, ``_cuda.py``, aside,
but for the walk of its ``record_stream``)."""
import copy

import pytest
import torch

import pyg_mspipe
from pyg_mspipe import TGNMemory
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._message_store import MessageStore
from pyg_mspipe.nn._state import MemoryState

from .helpers import random_stream

NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM = 30, 5, 8, 4


def _memory(**kwargs):
    torch.manual_seed(0)
    return TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM,
                     message_module=pyg_mspipe.IdentityMessage(MSG_DIM, MEM_DIM, TIME_DIM),
                     aggregator_module=pyg_mspipe.LastAggregator(), **kwargs)


def test_store_plan_moves_to_the_state_device():
    """A batch's store plan reaches a state on another device by being moved
    field by field (what a host-resident state does with a GPU model's
    messages). The plan used to be a plain tuple that this move could not
    rebuild: the first update_state of TGNMemory(storage='cpu') on a GPU raised
    TypeError."""
    src, dst, t, msg = random_stream(NUM_NODES, 20, MSG_DIM, seed=1)
    key = torch.cat([src, dst + NUM_NODES])
    other = torch.cat([dst, src])
    key_sorted, perm = key.sort()
    plan = MessageStore.plan(key_sorted, other[perm], torch.cat([t, t])[perm],
                             torch.cat([msg, msg])[perm])
    moved = type(plan)(*(x.to("cpu") for x in plan))
    direct, via = MemoryState(NUM_NODES, MEM_DIM, MSG_DIM), MemoryState(NUM_NODES, MEM_DIM,
                                                                       MSG_DIM, storage="cpu")
    direct.store_messages(plan, t.max())
    via.store_messages(moved, t.max())
    for name in ("ptr", "cnt", "last", "kept_t"):
        assert torch.equal(getattr(direct.store, name), getattr(via.store, name))
    assert torch.equal(direct.last_t, via.last_t)


def _train_both(ours, host):
    # the same training steps on both memories
    host.load_state_dict(ours.state_dict())
    for seed in range(4):
        src, dst, t, msg = random_stream(NUM_NODES, 16, MSG_DIM, seed=seed, t0=seed * 500)
        for m in (ours, host):
            z, _ = m(torch.cat([src, dst]).unique())
            z.sum().backward()
            m.update_state(src, dst, t, msg)
            m.detach()
    assert torch.equal(host.memory, ours.memory)
    for p, q in zip(ours.parameters(), host.parameters()):
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)


def test_host_storage_trains_like_device_storage():
    """storage='cpu' through training steps with gradients, exactly."""
    _train_both(_memory(), _memory(storage="cpu"))


def test_dyrep_host_storage_trains_like_device_storage():
    """DyRep's state with storage='cpu' (its table of recent edges pinned
    and placed with it) through training steps, exactly; a float64 model
    casts the table's edge features with the state."""
    from pyg_mspipe.nn import DyRepMemory
    torch.manual_seed(0)
    ours, host = (DyRepMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM, embedding_dim=4,
                              num_neighbors=3, **kw) for kw in ({}, {"storage": "cpu"}))
    _train_both(ours, host)
    assert torch.equal(host.state.recent.msg, ours.state.recent.msg)
    assert bool((ours.state.recent.loader.e_id >= 0).any())
    double = copy.deepcopy(ours).double()
    assert double.state.recent.msg.dtype == torch.float64
    assert torch.equal(double.state.recent.t, ours.state.recent.t)


@pytest.mark.parametrize("updater", ["gru", "rnn"])
def test_sync_free_kept_update_equals_the_default(updater):
    """The kept-message update without host synchronisation (the default on
    a GPU) computes what the CPU default computes, values and gradients."""
    memory = _memory() if updater == "gru" else _memory(
        updater=torch.nn.RNNCell(2 * MEM_DIM + MSG_DIM + TIME_DIM, MEM_DIM))
    src, dst, t, msg = random_stream(NUM_NODES, 24, MSG_DIM, seed=2)
    memory(torch.arange(NUM_NODES))
    memory.update_state(src, dst, t, msg)
    memory.detach()
    memory.state.memory.copy_(torch.randn(NUM_NODES, MEM_DIM))
    inputs = update.gather(memory.state, torch.arange(NUM_NODES), kept_only=True)
    assert isinstance(inputs, update.KeptInputs)
    assert 0 < int(inputs.has.sum()) < NUM_NODES  # rows with and without a message
    outs = []
    for sync_free in (False, True):
        memory.zero_grad()
        z, lu = update.compute(inputs, memory, sync_free=sync_free)
        (z * torch.arange(z.numel()).view_as(z)).sum().backward()
        outs.append((z.detach(), lu, [copy.deepcopy(p.grad) for p in memory.parameters()]))
    (z0, lu0, g0), (z1, lu1, g1) = outs
    torch.testing.assert_close(z0, z1, atol=1e-6, rtol=1e-5)
    assert torch.equal(lu0, lu1)
    for a, b in zip(g0, g1):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_inputs_on_another_device_are_a_clear_error():
    """Tensors on another device than the module (here the 'meta' device)
    are refused, naming both devices."""
    memory = _memory()
    with pytest.raises(ValueError, match="'n_id' is on meta but the module is on cpu"):
        memory(torch.zeros(3, dtype=torch.long, device="meta"))
    src, dst, t, msg = random_stream(NUM_NODES, 4, MSG_DIM, seed=0)
    with pytest.raises(ValueError, match="'raw_msg' is on meta"):
        memory.update_state(src, dst, t, msg.to("meta"))
    assert memory.msg_store.num_messages() == 0


def test_apan_host_storage_trains_like_device_storage():
    """APAN's state with storage='cpu' (its mailbox pinned and placed with
    it) through training steps, exactly."""
    from pyg_mspipe.nn import APANMemory
    torch.manual_seed(0)
    ours, host = (APANMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM, mailbox_size=3,
                             num_neighbors=2, **kw) for kw in ({}, {"storage": "cpu"}))
    _train_both(ours, host)
    assert torch.equal(host.state.store.mail, ours.state.store.mail)
    assert bool(ours.state.store.mail.abs().sum() > 0)


def test_distributed_context_default_backend():
    """Without a backend, the context takes NCCL where CUDA is available
    and gloo elsewhere (one process, an in-memory store)."""
    import torch.distributed as dist

    from pyg_mspipe.distributed import DistributedContext
    context = DistributedContext.init(rank=0, world_size=1, store=dist.HashStore(),
                                      timeout=30.0)
    try:
        assert dist.get_backend() == ("nccl" if torch.cuda.is_available() else "gloo")
        assert context.world_size == 1
    finally:
        context.close()
    assert not dist.is_initialized()


class _Recording(torch.Tensor):
    # a CPU tensor that reports itself on CUDA and records the streams it is
    # said to be used on
    @property
    def is_cuda(self):
        return True

    def record_stream(self, stream):
        self.streams.append(stream)


def _recording(values):
    x = torch.Tensor._make_subclass(_Recording, torch.as_tensor(values))
    x.streams = []
    return x


def test_record_stream_reaches_every_tensor_of_a_prepared_batch():
    """The CUDA-only module's walk, on the CPU: what the loader hands to the
    training stream (a batch, its sample, its generator state, in tuples and
    lists) has every CUDA tensor recorded once, and nothing else touched."""
    from torch_geometric.data import TemporalData

    from pyg_mspipe import _cuda
    from pyg_mspipe.loader._epochs import PreparedBatch

    src, dst, state, nodes = (_recording([0, 1]), _recording([2, 3]), _recording([7]),
                              _recording([0, 2]))
    batch = TemporalData(src=src, dst=dst, t=torch.tensor([1, 2]))
    item = PreparedBatch(0, state, batch, (nodes, [src]), None)
    stream = object()
    _cuda.record_stream(item, stream)
    assert [len(x.streams) for x in (dst, state, nodes)] == [1, 1, 1]
    assert len(src.streams) == 2  # (in the batch and in the sample)
    assert all(s is stream for x in (src, dst, state, nodes) for s in x.streams)
    _cuda.record_stream(item, None)  # no stream: nothing recorded
    assert len(dst.streams) == 1
