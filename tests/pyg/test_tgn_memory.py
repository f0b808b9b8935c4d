"""Equivalence of pyg_mspipe.TGNMemory with torch_geometric.nn.TGNMemory."""
import copy

import pytest
import torch
import torch_geometric.nn.models.tgn as pyg_tgn
import torch_geometric.typing

import pyg_mspipe
from pyg_mspipe import TGNMemory
from pyg_mspipe.pipeline import hook_stages

from ..helpers import random_stream

NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM = 40, 7, 12, 6
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-8, rtol=1e-8)}


@pytest.fixture(params=[torch.float64, torch.float32], ids=["f64", "f32"])
def dtype(request):
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)


def tol():
    return TOL[torch.get_default_dtype()]


def make_pair(aggr: str, msg_cls: str = "identity", seed: int = 0):
    """A PyG memory and ours with identical parameters.

    Without torch_scatter, PyG's own ``LastAggregator`` falls back to code that
    breaks ties differently and fills empty rows with an arbitrary message (see
    ``pyg/test_aggregators.py``); the reference then uses the torch_scatter
    semantics, which ours reproduces with and without torch_scatter.
    """
    torch.manual_seed(seed)
    if msg_cls == "identity":
        pyg_msg = pyg_tgn.IdentityMessage(MSG_DIM, MEM_DIM, TIME_DIM)
        our_msg = pyg_mspipe.IdentityMessage(MSG_DIM, MEM_DIM, TIME_DIM)
    else:  # a learnable message function: exercises the generic path
        pyg_msg = MLPMessage(MSG_DIM, MEM_DIM, TIME_DIM)
        our_msg = copy.deepcopy(pyg_msg)
    if aggr == "last":
        pyg_aggr, our_aggr = pyg_tgn.LastAggregator(), pyg_mspipe.LastAggregator()
        if not torch_geometric.typing.WITH_TORCH_SCATTER:
            pyg_aggr = pyg_mspipe.LastAggregator()
    else:
        pyg_aggr, our_aggr = pyg_tgn.MeanAggregator(), pyg_mspipe.MeanAggregator()
    ref = pyg_tgn.TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM, pyg_msg, pyg_aggr)
    ours = TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM, our_msg, our_aggr)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


class MLPMessage(torch.nn.Module):
    def __init__(self, raw_msg_dim, memory_dim, time_dim):
        super().__init__()
        self.out_channels = 9
        self.lin = torch.nn.Linear(raw_msg_dim + 2 * memory_dim + time_dim, 9)

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, z_src, z_dst, raw_msg, t_enc):
        return self.lin(torch.cat([z_src, z_dst, raw_msg, t_enc], dim=-1)).relu()


def assert_same_state(ref, ours):
    torch.testing.assert_close(ours.memory, ref.memory, **tol())
    assert torch.equal(ours.last_update, ref.last_update)


def assert_same_grads(ref, ours):
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        q = ref_params[name]
        if q.grad is None:
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
        else:
            assert p.grad is not None, name
            torch.testing.assert_close(p.grad, q.grad, **tol(),
                                       msg=lambda m, name=name: f"{name}: {m}")


def run_training_epoch(ref, ours, stream, batch_size, n_extra=10, gen=None):
    """The example's call sequence with a synthetic loss on the memory output."""
    ref_params = list(ref.parameters())
    our_params = list(ours.parameters())
    src, dst, t, msg = stream
    gen = gen or torch.Generator().manual_seed(1)
    for start in range(0, src.numel(), batch_size):
        sl = slice(start, start + batch_size)
        b_src, b_dst, b_t, b_msg = src[sl], dst[sl], t[sl], msg[sl]
        extra = torch.randint(0, NUM_NODES, (n_extra,), generator=gen)
        n_id = torch.cat([b_src, b_dst, extra]).unique()
        z_ref, lu_ref = ref(n_id)
        z_our, lu_our = ours(n_id)
        torch.testing.assert_close(z_our, z_ref, **tol())
        assert torch.equal(lu_our, lu_ref)
        w = torch.linspace(-1, 1, z_ref.numel()).view_as(z_ref)
        loss_ref = (z_ref * w).sum() + z_ref.pow(2).mean()
        loss_our = (z_our * w).sum() + z_our.pow(2).mean()
        ref.update_state(b_src, b_dst, b_t, b_msg)
        ours.update_state(b_src, b_dst, b_t, b_msg)
        assert_same_state(ref, ours)
        for p in ref_params + our_params:
            p.grad = None
        loss_ref.backward()
        loss_our.backward()
        assert_same_grads(ref, ours)
        with torch.no_grad():
            # An optimizer step, then the same parameters on both sides: the
            # time encoder multiplies its weight by timestamps, so a training
            # run amplifies round-off chaotically; syncing keeps every
            # iteration's comparison sharp.
            for p, q in zip(ref_params, our_params):
                if p.grad is not None:
                    p.sub_(0.05 * p.grad)
                    q.copy_(p)
        ref.detach()
        ours.detach()


def run_eval(ref, ours, stream, batch_size):
    src, dst, t, msg = stream
    with torch.no_grad():
        for start in range(0, src.numel(), batch_size):
            sl = slice(start, start + batch_size)
            n_id = torch.cat([src[sl], dst[sl]]).unique()
            z_ref, lu_ref = ref(n_id)
            z_our, lu_our = ours(n_id)
            torch.testing.assert_close(z_our, z_ref, **tol())
            assert torch.equal(lu_our, lu_ref)
            ref.update_state(src[sl], dst[sl], t[sl], msg[sl])
            ours.update_state(src[sl], dst[sl], t[sl], msg[sl])
            assert_same_state(ref, ours)


@pytest.mark.parametrize("aggr", ["last", "mean"])
@pytest.mark.parametrize("msg_cls", ["identity", "mlp"])
def test_matches_pyg_over_epochs(aggr, msg_cls, scatter_backends, dtype):
    ref, ours = make_pair(aggr, msg_cls)
    train = random_stream(NUM_NODES - 5, 300, MSG_DIM, seed=2, tie_prob=0.3)
    val = random_stream(NUM_NODES, 80, MSG_DIM, seed=3, t0=int(train[2][-1]))
    for epoch in range(3):
        ref.train()
        ours.train()
        ref.reset_state()
        ours.reset_state()
        run_training_epoch(ref, ours, train, batch_size=25 + 7 * epoch)
        with torch.no_grad():  # as in PyG's example, whose test() is no_grad
            ref.eval()  # flushes all pending messages, never-seen nodes included
            ours.eval()
        assert_same_state(ref, ours)
        run_eval(ref, ours, val, batch_size=20)
    # train -> eval -> train without a reset: the stores carry over.
    ref.train()
    ours.train()
    more = random_stream(NUM_NODES, 60, MSG_DIM, seed=4, t0=int(val[2][-1]))
    run_training_epoch(ref, ours, more, batch_size=15)


def test_many_events_per_node_in_one_batch(scatter_backends, dtype):
    """A node with several events in one batch keeps all of them (mean)."""
    for aggr in ("mean", "last"):
        ref, ours = make_pair(aggr)
        src = torch.tensor([3, 3, 3, 5, 3, 5, 7, 3])
        dst = torch.tensor([5, 5, 9, 3, 9, 9, 3, 1])
        t = torch.tensor([1, 1, 2, 2, 4, 4, 4, 4])
        msg = torch.randn(8, MSG_DIM)
        stream = (torch.cat([src, dst]), torch.cat([dst, src]), torch.cat([t, t + 4]),
                  torch.cat([msg, msg.flip(0)]))
        run_training_epoch(ref, ours, stream, batch_size=8, n_extra=3)


def test_forward_only_unseen_nodes():
    ref, ours = make_pair("last")
    n_id = torch.tensor([0, 4, 9])
    z_ref, lu_ref = ref(n_id)
    z_our, lu_our = ours(n_id)
    torch.testing.assert_close(z_our, z_ref, **tol())
    assert torch.equal(lu_our, lu_ref)


@pytest.mark.parametrize("aggr", ["last", "mean"])
def test_gradients_through_memory_not_yet_detached(aggr, dtype):
    """Two iterations without detach() in between: the second forward reads
    memory that still carries the first iteration's graph, so gradients flow
    through it into the first iteration (nodes with and without pending
    messages alike)."""
    ref, ours = make_pair(aggr)
    src, dst, t, msg = random_stream(NUM_NODES - 5, 60, MSG_DIM, seed=11)
    for m in (ref, ours):
        m.update_state(src[:20], dst[:20], t[:20], msg[:20])
        m.detach()
    n_id = torch.arange(NUM_NODES)  # the last 5 nodes never get a message
    losses = []
    for m in (ref, ours):
        z1, _ = m(n_id)
        m.update_state(src[20:40], dst[20:40], t[20:40], msg[20:40])
        assert m.memory.requires_grad
        z2, _ = m(n_id)
        w = torch.linspace(-1, 1, z2.numel()).view_as(z2)
        losses.append((z2 * w).sum() + z1.pow(2).mean())
        losses[-1].backward()
    torch.testing.assert_close(losses[1], losses[0], **tol())
    assert_same_grads(ref, ours)


def test_state_dict_keys_and_parameters_match_pyg():
    ref, ours = make_pair("mean")
    our_keys = {k for k in ours.state_dict() if not k.endswith("_extra_state")}
    assert our_keys == set(ref.state_dict())
    assert dict(ours.named_parameters()).keys() == dict(ref.named_parameters()).keys()


def test_reset_state_is_constant_python_work():
    _, ours = make_pair("last")
    stream = random_stream(NUM_NODES, 50, MSG_DIM, seed=5)
    ours.update_state(*stream)
    assert ours.msg_store.num_messages() == 100  # 50 per direction
    ours.reset_state()
    assert ours.msg_store.num_messages() == 0
    assert torch.count_nonzero(ours.memory) == 0
    assert torch.count_nonzero(ours.last_update) == 0


def test_update_state_reuses_forward_result():
    _, ours = make_pair("last")
    stream = random_stream(NUM_NODES, 40, MSG_DIM, seed=6)
    src, dst, t, msg = stream
    ours.update_state(src[:20], dst[:20], t[:20], msg[:20])
    ours.detach()
    twin = copy.deepcopy(ours)  # gets the same updates without a forward first
    calls = []
    hook_stages(ours, lambda stage: stage == "fetch" and calls.append(stage))
    ours(torch.cat([src[20:], dst[20:]]).unique())
    ours.update_state(src[20:], dst[20:], t[20:], msg[20:])
    assert len(calls) == 1  # forward only: update_state reused it
    twin.update_state(src[20:], dst[20:], t[20:], msg[20:])
    torch.testing.assert_close(ours.memory, twin.memory, rtol=0, atol=0)
    # forward's n_id in any order: still reused, same result as recomputing
    ours.detach()
    ours(torch.cat([src[20:], dst[20:], torch.arange(NUM_NODES)]).unique().flip(0))
    ours.update_state(src[20:], dst[20:], t[20:] + 500, msg[20:])
    assert len(calls) == 2
    twin.update_state(src[20:], dst[20:], t[20:] + 500, msg[20:])
    torch.testing.assert_close(ours.memory, twin.memory, rtol=0, atol=0)
    # A parameter change in between invalidates the reuse.
    ours.detach()
    ours(torch.arange(NUM_NODES))
    with torch.no_grad():
        ours.gru.weight_hh.add_(0.1)
    ours.update_state(src[20:], dst[20:], t[20:] + 1000, msg[20:])
    assert len(calls) == 4


def test_reset_state_cuts_the_stale_graph():
    """Deliberate difference: PyG's reset_state() zeroes the memory through
    ``.data`` and keeps the autograd graph of a flush done with grad enabled,
    so the next backward leaks gradient through memory that no longer exists.
    Ours detaches (values are the same, the spurious gradient is gone)."""
    ref, ours = make_pair("mean")
    stream = random_stream(NUM_NODES, 40, MSG_DIM, seed=8)
    for m in (ref, ours):
        m.update_state(*stream)
        m.eval()  # flush with grad enabled: memory now carries a graph
        m.train()
        m.reset_state()
    n_id = torch.arange(10)
    ref(n_id)[0].sum().backward()
    ours(n_id)[0].sum().backward()
    assert ref.gru.weight_ih.grad.abs().sum() > 0  # leaked through the old flush
    assert ours.gru.weight_ih.grad.abs().sum() == 0  # zero memory, zero input


def test_duplicate_ids_all_updated():
    _, ours = make_pair("last")
    src, dst, t, msg = random_stream(NUM_NODES, 30, MSG_DIM, seed=9)
    ours.update_state(src, dst, t, msg)
    n_id = torch.cat([src[:5], src[:5]])
    z, lu = ours(n_id)
    torch.testing.assert_close(z[:5], z[5:])
    assert torch.equal(lu[:5], lu[5:])
    z_unique, _ = ours(src[:5])
    torch.testing.assert_close(z[:5], z_unique)


@pytest.mark.parametrize("aggr", ["last", "mean"])
def test_host_storage_same_results(aggr):
    """storage='cpu' (state in host memory, parameters wherever .to() puts
    them) computes the same; on this CPU-only path it must be identical."""
    _, ours = make_pair(aggr)
    host = TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM,
                     message_module=copy.deepcopy(ours.msg_s_module),
                     aggregator_module=copy.deepcopy(ours.aggr_module), storage="cpu")
    host.load_state_dict(ours.state_dict())
    assert host.storage == torch.device("cpu") and "storage='cpu'" in repr(host)
    for seed in range(3):
        src, dst, t, msg = random_stream(NUM_NODES, 25, MSG_DIM, seed=seed, t0=seed * 1000)
        for m in (ours, host):
            z, lu = m(torch.cat([src, dst]).unique())
            m.update_state(src, dst, t, msg)
        assert torch.equal(host.memory, ours.memory)
        assert torch.equal(host.last_update, ours.last_update)
    host = host.double()  # dtype changes apply to the host state too
    assert host.memory.dtype == torch.float64 and host.msg_store.msg.dtype == torch.float64
    assert host.memory.device.type == "cpu"


def test_bad_storage():
    with pytest.raises(ValueError, match="storage"):
        TGNMemory(5, 2, 3, 3, message_module=pyg_mspipe.IdentityMessage(2, 3, 3),
                  aggregator_module=pyg_mspipe.LastAggregator(), storage="cuda")


@pytest.mark.parametrize("edit", ["mask_row", "relu_", "last_update"])
def test_in_place_edit_of_forward_output_keeps_memory_exact(edit):
    """Issue 10, defect 1: the caller edits what memory(n_id) returned, in
    place, before update_state(); update_state must not reuse the edited
    tensor. PyG recomputes from the state, so must we."""
    ref, ours = make_pair("last")
    src, dst, t, msg = random_stream(NUM_NODES, 120, MSG_DIM, seed=11)
    for lo in range(0, 120, 20):
        batch = (src[lo:lo + 20], dst[lo:lo + 20], t[lo:lo + 20], msg[lo:lo + 20])
        n_id = torch.cat([batch[0], batch[1]]).unique()
        for memory in (ref, ours):
            z, last_update = memory(n_id)
            with torch.no_grad():
                if edit == "mask_row":
                    z[0] = 0.0
                elif edit == "relu_":
                    z.relu_()
                else:
                    last_update.zero_()
            memory.update_state(*batch)
            memory.detach()
    torch.testing.assert_close(ours.memory, ref.memory, **tol())
    assert torch.equal(ours.last_update, ref.last_update)


def test_state_dict_loads_into_pyg_with_strict_false():
    """Issue 10, defect 9: our state_dict into PyG's TGNMemory. It holds
    PyG's keys plus our pending messages (``*_extra_state``), which PyG
    cannot hold: with ``strict=False`` it loads and reports exactly those as
    unexpected; the memory, last update and parameters arrive intact."""
    ref, ours = make_pair("mean")
    ours.update_state(*random_stream(NUM_NODES, 30, MSG_DIM, seed=12))
    result = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not result.missing_keys
    assert set(result.unexpected_keys) == {"_extra_state", "msg_store._extra_state"}
    assert torch.equal(ref.memory, ours.memory)
    assert torch.equal(ref.last_update, ours.last_update)
    for (name, a), (_, b) in zip(ref.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(RuntimeError, match="Unexpected key"):
        ref.load_state_dict(ours.state_dict())  # strict: PyG has nowhere to put them


@pytest.mark.parametrize("aggr", ["last", "mean"])
def test_flush_in_chunks_equals_one_pass(aggr):
    """Leaving training mode updates every node from the state before the
    flush: in chunks (bounded temporaries, large graphs) as in one pass."""
    from pyg_mspipe.nn import _update as update

    _, ours = make_pair(aggr)
    ours.update_state(*random_stream(NUM_NODES, 60, MSG_DIM, seed=13))
    ours.detach()
    twin = copy.deepcopy(ours)
    update.flush(ours.state, ours, chunk_size=7)  # 40 nodes: 6 chunks
    update.flush(twin.state, twin)
    torch.testing.assert_close(ours.memory, twin.memory, rtol=0, atol=1e-6)
    assert torch.equal(ours.last_update, twin.last_update)
    assert ours.msg_store.num_messages() == twin.msg_store.num_messages() == 0
