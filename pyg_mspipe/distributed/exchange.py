r"""The all-gather of every rank's write-back, applied on every replica."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_mspipe.distributed.context import DistributedContext
from pyg_mspipe.nn._state import WriteBack
from pyg_mspipe.nn._update import EventPlan, UpdateSteps

__all__ = ["WriteBackExchange"]


class ExchangeRecord(NamedTuple):
    r"""One iteration's exchange, as seen by this rank."""
    nodes: int  #: rows this rank contributed
    events: int  #: events of this rank's share
    bytes_sent: int  #: bytes this rank put into the all-gathers (padding included)
    bytes_gathered: int  #: bytes this rank received from the all-gathers (all ranks')


class _Share(NamedTuple):
    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    src: Tensor
    dst: Tensor
    t: Tensor
    raw_msg: Tensor


class WriteBackExchange:
    r"""The committer (:meth:`TGNMemory.set_committer`) of a data-parallel
    run with replicated memory: each iteration, every rank's write-back is
    all-gathered on :attr:`~DistributedContext.commit_group`, and every rank
    applies one write-back for the whole global batch (pending messages
    planned from the global batch's events, a node's row from the lowest
    rank holding it): the one a single process computes from the global
    batch. It must be called every iteration, with :obj:`None` for an empty
    share, so the collectives stay matched (see :doc:`distributed`, "The
    write-back exchange").

    Args:
        memory (TGNMemory): The memory (its state, update steps and modules).
        context (DistributedContext): The run.
    """

    def __init__(self, memory, context: DistributedContext):
        if type(memory.steps) is not UpdateSteps:
            raise NotImplementedError(
                f"WriteBackExchange: {type(memory).__name__} has its own update steps "
                f"({type(memory.steps).__name__}); the exchange re-plans the "
                "global batch's messages from the events with TGN's message store (TGN, "
                "JODIE; DyRep builds its messages from the memory)")
        self.memory = memory
        self.context = context
        self.group = context.commit_group
        #: The last iteration's :class:`ExchangeRecord`.
        self.last: ExchangeRecord | None = None
        #: Iterations exchanged, and bytes gathered over them.
        self.iterations = 0
        self.bytes_gathered = 0

    def __call__(self, write_back: WriteBack | None, plan: EventPlan | None):
        combined = self.combine(write_back, plan)
        if combined is not None:
            self.memory.state.apply(combined)

    def combine(self, write_back: WriteBack | None, plan: EventPlan | None) -> WriteBack | None:
        r"""All-gathers this rank's write-back and returns the global batch's
        (:obj:`None` if the global batch is empty); changes no state."""
        if (write_back is None) != (plan is None):
            raise ValueError("WriteBackExchange: pass both the write-back and its plan, or "
                             "neither (an empty share)")
        state = self.memory.state
        share = self._share(write_back, plan)
        shares = self._gather(share)
        if sum(s.src.numel() for s in shares) == 0:
            return None
        device = state.device
        events = [torch.cat([getattr(s, k) for s in shares]).to(device)
                  for k in ("src", "dst", "t", "raw_msg")]
        steps = self.memory.steps
        full = steps.plan(*events)
        n_id = torch.cat([s.n_id for s in shares])
        uniq, inverse = torch.unique(n_id, return_inverse=True)
        position = torch.arange(n_id.numel())
        first = torch.full((uniq.numel(),), n_id.numel()).scatter_reduce_(
            0, inverse, position, reduce="amin")
        if not torch.equal(uniq.to(device), full.n_id):
            raise RuntimeError("WriteBackExchange: the ranks' write-backs do not cover the "
                               "nodes of the global batch (every rank must write back the "
                               "nodes of its own share)")
        memory = torch.cat([s.memory for s in shares]).index_select(0, first)
        last_update = torch.cat([s.last_update for s in shares]).index_select(0, first)
        memory, last_update = memory.to(device), last_update.to(device)
        return steps.write_back(state, full, memory, last_update, self.memory)

    def _share(self, write_back: WriteBack | None, plan: EventPlan | None) -> _Share:
        state = self.memory.state
        cpu = torch.device("cpu")
        dtype = state.memory.dtype
        if write_back is None:
            empty = torch.empty(0, dtype=torch.long)
            return _Share(empty, torch.empty(0, state.memory_dim, dtype=dtype), empty, empty,
                          empty, empty, torch.empty(0, self.memory.raw_msg_dim, dtype=dtype))
        return _Share(write_back.n_id.to(cpu), write_back.memory.detach().to(cpu, dtype),
                      write_back.last_update.to(cpu), plan.src.to(cpu), plan.dst.to(cpu),
                      plan.t.to(cpu), plan.raw_msg.detach().to(cpu, dtype))

    def _gather(self, share: _Share) -> list[_Share]:
        context, world = self.context, self.context.world_size
        dim, msg_dim = share.memory.size(1), share.raw_msg.size(1)
        n, e = share.n_id.numel(), share.src.numel()
        size = torch.tensor([n, e])
        sizes = [torch.empty_like(size) for _ in range(world)]
        context.run("all_gather of the write-back sizes", dist.all_gather, sizes, size,
                    group=self.group)
        max_n = max(int(s[0]) for s in sizes)
        max_e = max(int(s[1]) for s in sizes)
        ints = torch.zeros(2 * max_n + 3 * max_e, dtype=torch.long)
        floats = torch.zeros(max_n * dim + max_e * msg_dim, dtype=share.memory.dtype)
        ints[:2 * n + 3 * e] = torch.cat([share.n_id, share.last_update, share.src, share.dst,
                                          share.t])
        floats[:n * dim + e * msg_dim] = torch.cat([share.memory.reshape(-1),
                                                    share.raw_msg.reshape(-1)])
        all_ints = [torch.empty_like(ints) for _ in range(world)]
        all_floats = [torch.empty_like(floats) for _ in range(world)]
        context.run("all_gather of the write-backs", dist.all_gather, all_ints, ints,
                    group=self.group)
        context.run("all_gather of the write-backs", dist.all_gather, all_floats, floats,
                    group=self.group)
        out = []
        for (rn, re), i, f in zip(([int(x) for x in s] for s in sizes), all_ints, all_floats):
            a, b, c = rn, 2 * rn, 2 * rn + re
            out.append(_Share(i[:a], f[:rn * dim].view(rn, dim), i[a:b], i[b:c],
                              i[c:c + re], i[c + re:c + 2 * re],
                              f[rn * dim:rn * dim + re * msg_dim].view(re, msg_dim)))
        sent = size.numel() * 8 + ints.numel() * 8 + floats.numel() * floats.element_size()
        self.last = ExchangeRecord(n, e, sent, world * sent)
        self.iterations += 1
        self.bytes_gathered += world * sent
        return out
