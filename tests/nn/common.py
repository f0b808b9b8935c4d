"""Drives a memory and its reference side by side on a random stream."""
import copy

import torch

from ..helpers import random_stream

NUM_NODES, MSG_DIM = 14, 3


def batches(num_events=60, batch=12, seed=0):
    """Batches of a stream with bursts, repeated nodes and equal times, and
    per batch the nodes forward reads (the batch's, plus a few others)."""
    src, dst, t, msg = random_stream(NUM_NODES, num_events, MSG_DIM, seed=seed, tie_prob=0.4)
    msg = msg.to(torch.get_default_dtype())
    g = torch.Generator().manual_seed(seed + 7)
    out = []
    for lo in range(0, num_events, batch):
        s, d = src[lo:lo + batch], dst[lo:lo + batch]
        extra = torch.randint(0, NUM_NODES, (3,), generator=g)
        n_id = torch.cat([s, d, extra]).unique()
        out.append((n_id, s, d, t[lo:lo + batch], msg[lo:lo + batch]))
    return out


def compare(memory, ref_cls, dtype, tol, embed=None, **ref_kwargs):
    """Runs `memory` and `ref_cls(deepcopy(memory))` over the batches:
    forward outputs, memory after each update, and the gradients of a
    weighted sum of the forward outputs (one backward per batch) agree.
    `embed(memory_module, z, last_update, n_id, batch)` maps the forward's
    output to what the loss reads (default: the output itself); it returns
    the extra arguments of update_state too."""
    memory = memory.to(dtype)
    twin = copy.deepcopy(memory)
    ref = ref_cls(twin, NUM_NODES, **ref_kwargs)
    g = torch.Generator().manual_seed(3)
    for n_id, src, dst, t, msg in batches():
        msg = msg.to(dtype)
        z, lu = memory(n_id)
        z_ref, lu_ref = ref.forward(n_id)
        torch.testing.assert_close(z, z_ref, rtol=tol, atol=tol)
        assert torch.equal(lu, lu_ref)
        extra, extra_ref = (), ()
        if embed is not None:
            z, extra = embed(memory, z, lu, n_id, (src, dst, t))
            z_ref, extra_ref = embed(twin, z_ref, lu_ref, n_id, (src, dst, t))
            torch.testing.assert_close(z, z_ref, rtol=tol, atol=tol)
        w = torch.randn(z.shape, generator=g, dtype=dtype)
        for out in (z, z_ref):  # (an APAN reference without any mail has none)
            if out.requires_grad:
                (out * w).sum().backward()
        memory.update_state(src, dst, t, msg, *extra)
        ref.update_state(src, dst, t, msg, *extra_ref)
        rows = torch.arange(NUM_NODES)
        torch.testing.assert_close(memory.memory.index_select(0, rows),
                                   torch.stack(ref.s), rtol=tol, atol=tol)
        assert memory.last_update.tolist() == ref.lu
        memory.detach()
        ref.detach()
    grads = [(name, p.grad, q.grad) for (name, p), q in
             zip(memory.named_parameters(), twin.parameters())]
    assert any(gp is not None for _, gp, _ in grads)
    for name, gp, gq in grads:
        if gp is None:
            assert gq is None or not gq.any(), name
        else:
            torch.testing.assert_close(gp, gq, rtol=tol, atol=tol, msg=name)
