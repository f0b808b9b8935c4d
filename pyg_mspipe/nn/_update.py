r"""The update of a TGN memory as steps over a :class:`MemoryState`: plan
(events only), gather (a copy of what the update reads), compute
(differentiable, no state read), write-back (see ``docs/architecture.md``).
:obj:`modules` is any object with the attributes :obj:`MODULE_NAMES`."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch_geometric.typing
from torch import Tensor
from torch_geometric.nn.models import tgn as pyg_tgn

from pyg_mspipe import _cuda
from pyg_mspipe._scatter import scatter_max_long
from pyg_mspipe.nn._message_store import MessageStore
from pyg_mspipe.nn._state import MemoryState, WriteBack
from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.messages import IdentityMessage
from pyg_mspipe.nn.updaters import gru_update_kept

#: Names of the modules the update calls (what :func:`compute` reads).
MODULE_NAMES = ("msg_s_module", "msg_d_module", "aggr_module", "time_enc", "gru")


class EventPlan(NamedTuple):
    r"""What storing a batch of events needs, computed from the events alone
    (see :func:`plan_events`)."""
    src: Tensor
    dst: Tensor
    t: Tensor
    raw_msg: Tensor
    n_id: Tensor  #: the batch's nodes, sorted and unique
    messages: tuple  #: :meth:`MessageStore.plan` of the batch's messages
    t_min: Tensor
    t_max: Tensor


class KeptInputs(NamedTuple):
    r"""Inputs of the update of :math:`n` nodes with
    :class:`~pyg_mspipe.LastAggregator` and
    :class:`~pyg_mspipe.IdentityMessage`: only the message each node keeps."""
    plain: Tensor  #: [memory, other endpoint's memory, raw message], [n, 2d + m]
    t_rel: Tensor  #: the kept message's time relative to the node's last update
    has: Tensor  #: whether the node has a pending message
    last_update: Tensor  #: the node's last update after the update
    dim: int  #: memory dimensionality

    @property
    def memory(self) -> Tensor:
        r"""The nodes' current memory rows (a view)."""
        return self.plain[:, :self.dim]


class MessageInputs(NamedTuple):
    r"""Inputs of the update of :math:`n` nodes for any message module and
    aggregator: every pending message."""
    mem_n: Tensor  #: the nodes' current memory, [n, d]
    owner: Tensor  #: per message, the position of its node
    num_s: int  #: messages from source-side slots (listed first)
    t: Tensor
    lu_key: Tensor  #: per message, its node's last update
    z_other: Tensor  #: per message, the other endpoint's memory
    raw: Tensor

    @property
    def memory(self) -> Tensor:
        r"""The nodes' current memory rows."""
        return self.mem_n


def plan_events(src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor, num_nodes: int,
                msg_dtype: torch.dtype) -> EventPlan:
    r"""The :class:`EventPlan` of a batch of events (reads no state)."""
    return plan_nodes(src, dst, t, raw_msg)._replace(
        messages=layout_messages(src, dst, t, raw_msg, num_nodes, msg_dtype))


def plan_nodes(src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan:
    r"""The plan of a batch without its messages (:obj:`()`), for a model
    whose write-back builds them (reads no state)."""
    t_min, t_max = torch.aminmax(t)
    return EventPlan(src, dst, t, raw_msg, torch.cat([src, dst]).unique(), (), t_min, t_max)


def layout_messages(src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, num_nodes: int,
                    msg_dtype: torch.dtype) -> tuple:
    r""":obj:`msg[i]` laid out for the store (:meth:`MessageStore.plan`) in
    slots :obj:`src[i]` and :obj:`num_nodes + dst[i]` (reads no state)."""
    # PyG's (unstable) sort call per side: equal keys come in PyG's order
    src_sorted, perm_s = src.sort()
    dst_sorted, perm_d = dst.sort()
    perm = torch.cat([perm_s, perm_d])
    return MessageStore.plan(
        torch.cat([src_sorted, dst_sorted + num_nodes]),
        torch.cat([dst.index_select(0, perm_s), src.index_select(0, perm_d)]),
        t.index_select(0, perm),
        msg.index_select(0, perm).to(msg_dtype),
    )


def _is_last_aggregator(module) -> bool:
    # PyG's LastAggregator without torch_scatter breaks ties otherwise: run as is
    return isinstance(module, LastAggregator) or (
        isinstance(module, pyg_tgn.LastAggregator) and torch_geometric.typing.WITH_TORCH_SCATTER)


def _is_identity_message(module) -> bool:
    return isinstance(module, (IdentityMessage, pyg_tgn.IdentityMessage))


def keeps_one_message(modules) -> bool:
    r"""Whether the update reads only each node's kept message
    (:class:`LastAggregator`, :class:`IdentityMessage` both ways)."""
    return (_is_last_aggregator(modules.aggr_module)
            and _is_identity_message(modules.msg_s_module)
            and _is_identity_message(modules.msg_d_module))


def _kept_messages(state: MemoryState, n_id: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    # Per node: has a message, its arena row, its time. The source side wins
    # ties (PyG lists it first); EMPTY_T marks a slot without messages.
    store = state.store
    num = n_id.numel()
    slots = torch.cat([n_id, n_id + state.num_nodes])
    row_slot = store.last.index_select(0, slots)
    t_slot = store.kept_t.index_select(0, slots)
    t_s, t_d = t_slot[:num], t_slot[num:]
    use_s = t_s >= t_d
    row = torch.where(use_s, row_slot[:num], row_slot[num:])
    t_win = torch.maximum(t_s, t_d)
    return t_win != store.EMPTY_T, row, t_win


def gather(state: MemoryState, n_id: Tensor, kept_only: bool) -> KeptInputs | MessageInputs:
    r"""A copy of what the update of :obj:`n_id` (on the state's device)
    reads: :class:`KeptInputs` with :obj:`kept_only`, else
    :class:`MessageInputs`."""
    return _gather_kept(state, n_id) if kept_only else _gather_messages(state, n_id)


def _gather_kept(state: MemoryState, n_id: Tensor) -> KeptInputs:
    # only the kept message is built: PyG's dropped rows get zero gradient
    store, memory = state.store, state.memory
    num = n_id.numel()
    has, row, t_win = _kept_messages(state, n_id)
    t_rel = t_win - state.last_update.index_select(0, n_id)
    other = store.other.index_select(0, row)
    last_update = torch.where(has, t_win, t_win.new_zeros(()))
    # [memory, other's memory, raw message] into one buffer where no
    # gradient is needed (out= records none)
    dim = state.memory_dim
    if store.msg.dtype == memory.dtype and not memory.requires_grad:
        plain = memory.new_empty(num, 2 * dim + store.msg.size(1))
        torch.index_select(memory, 0, n_id, out=plain[:, :dim])
        torch.index_select(memory, 0, other, out=plain[:, dim:2 * dim])
        torch.index_select(store.msg, 0, row, out=plain[:, 2 * dim:])
    else:
        plain = torch.cat([memory.index_select(0, n_id), memory.index_select(0, other),
                           store.msg.index_select(0, row).to(memory.dtype)], dim=-1)
    return KeptInputs(plain, t_rel, has, last_update, dim)


def _gather_messages(state: MemoryState, n_id: Tensor) -> MessageInputs:
    num = n_id.numel()
    store = state.store
    slots = torch.cat([n_id, n_id + state.num_nodes])
    cnt = store.cnt.index_select(0, slots)
    # source-side slots first: PyG's concatenation order
    rows, owner = store.locate(slots, cnt)
    owner = owner.remainder(num) if num else owner
    mem_n = state.memory.index_select(0, n_id)
    return MessageInputs(
        mem_n=mem_n, owner=owner, num_s=int(cnt[:num].sum()),
        t=store.t.index_select(0, rows),
        lu_key=state.last_update.index_select(0, n_id).index_select(0, owner),
        z_other=state.memory.index_select(0, store.other.index_select(0, rows)),
        raw=store.msg.index_select(0, rows).to(mem_n.dtype))


def message_partners(state: MemoryState, n_id: Tensor, kept_only: bool) -> tuple[Tensor, Tensor]:
    r""":obj:`(owner, partner)`: the other endpoints of the messages the
    update of :obj:`n_id` reads, and the position in :obj:`n_id` of each."""
    store = state.store
    if kept_only:
        has, row, _ = _kept_messages(state, n_id)
        pos = has.nonzero().view(-1)
        return pos, store.other.index_select(0, row.index_select(0, pos))
    num = n_id.numel()
    rows, owner = store.locate(torch.cat([n_id, n_id + state.num_nodes]))
    return (owner.remainder(num) if num else owner), store.other.index_select(0, rows)


def compute(inputs: KeptInputs | MessageInputs, modules,
            sync_free: bool | None = None) -> tuple[Tensor, Tensor]:
    r"""The updated memory and last update of the gathered nodes
    (differentiable; reads no state). :obj:`sync_free` masks the rows
    without a message instead of finding them: same values, no host
    synchronisation (default: on a GPU)."""
    if isinstance(inputs, KeptInputs):
        if sync_free is None:
            sync_free = inputs.plain.is_cuda
        return _compute_kept(inputs, modules, sync_free)
    return _compute_messages(inputs, modules)


def _compute_messages(inputs: MessageInputs, mods) -> tuple[Tensor, Tensor]:
    mem_n, owner, num_s, t, lu_key, z_other, raw = inputs
    num = mem_n.size(0)
    t_enc = mods.time_enc((t - lu_key).to(raw.dtype))
    z_key = mem_n.index_select(0, owner)
    msg_s = mods.msg_s_module(z_key[:num_s], z_other[:num_s], raw[:num_s], t_enc[:num_s])
    msg_d = mods.msg_d_module(z_key[num_s:], z_other[num_s:], raw[num_s:], t_enc[num_s:])
    msg = torch.cat([msg_s, msg_d], dim=0)
    aggr = mods.aggr_module(msg, owner, t, num)
    return mods.gru(aggr, mem_n), scatter_max_long(t, owner, num)


def _compute_kept(inputs: KeptInputs, mods, sync_free: bool) -> tuple[Tensor, Tensor]:
    plain, t_rel, has, last_update, dim = inputs
    t_enc = mods.time_enc(t_rel.to(plain.dtype))
    h = plain[:, :dim]
    # no pending message: zero input (as in PyG)
    if sync_free:  # mask every row
        msg = torch.cat([plain, t_enc], dim=-1)
        msg = torch.where(has.unsqueeze(-1), msg, msg.new_zeros(()))
        return mods.gru(msg, h), last_update
    missing = (~has).nonzero().view(-1)  # usually few rows
    gru = mods.gru
    if isinstance(gru, torch.nn.GRUCell) and gru.bias_ih is not None:
        return gru_update_kept(gru, plain, t_enc, missing), last_update
    msg = torch.cat([plain, t_enc], dim=-1)
    if missing.numel():
        msg = msg.index_fill(0, missing, 0.0)
    return gru(msg, h), last_update


def flush(state: MemoryState, modules, chunk_size: int = 65536):
    r"""PyG's flush when leaving training mode: every node through the
    updater (zero input without a message), :obj:`chunk_size` nodes at a
    time, all from the state before the flush; then no pending messages."""
    num = state.num_nodes
    device = modules.time_enc.lin.weight.device
    kept_only = keeps_one_message(modules)
    if num <= chunk_size:  # one chunk: no copy of the whole memory
        n_id = torch.arange(num, device=state.device)
        memory, last_update = compute(move_inputs(gather(state, n_id, kept_only), device),
                                      modules)
    else:
        memory = last_update = None
        for lo in range(0, num, chunk_size):
            n_id = torch.arange(lo, min(lo + chunk_size, num), device=state.device)
            mem, lu = compute(move_inputs(gather(state, n_id, kept_only), device), modules)
            if memory is None:
                memory = mem.new_empty((num,) + tuple(mem.shape[1:]))
                last_update = lu.new_empty(num)
            memory[lo:lo + n_id.numel()] = mem
            last_update[lo:lo + n_id.numel()] = lu
    state.write(torch.arange(num, device=state.device), memory, last_update)
    state.clear_messages()


#: Rows of a recomputation are padded to a multiple of this.
ROW_BLOCK = 4


def pad_rows(n_id: Tensor, block: int = ROW_BLOCK) -> Tensor:
    r""":obj:`n_id` padded to a multiple of :obj:`block` with its first entry,
    so recomputed rows are bit-identical on a CPU BLAS (``docs/distributed.md``)."""
    rem = n_id.numel() % block
    if rem == 0:  # (an empty n_id too)
        return n_id
    return torch.cat([n_id, n_id[:1].expand(block - rem)])


class UpdateSteps:
    r"""The update steps of TGN and JODIE (:attr:`TGNMemory.steps`), which
    every executor runs; another model subclasses or replaces them.

    Args:
        kept_only (bool): :func:`keeps_one_message` of the modules.
        num_nodes (int): Number of nodes.
        store (MessageStore): The state's store (its message dtype).
    """
    #: The memory's submodules :meth:`compute` reads (copied by the pipeline).
    module_names = MODULE_NAMES

    def __init__(self, kept_only: bool, num_nodes: int, store: MessageStore):
        self.kept_only = kept_only
        self.num_nodes = num_nodes
        self.store = store

    @property
    def msg_dtype(self) -> torch.dtype:
        r"""The store's message dtype."""
        return self.store.msg.dtype

    def plan(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan:
        r""":func:`plan_events` (reads no state)."""
        return plan_events(src, dst, t, raw_msg, self.num_nodes, self.msg_dtype)

    def gather(self, state: MemoryState, n_id: Tensor):
        r""":func:`gather`."""
        return gather(state, n_id, self.kept_only)

    def compute(self, inputs, modules) -> tuple[Tensor, Tensor]:
        r""":func:`compute`."""
        return compute(inputs, modules)

    def partners(self, state: MemoryState, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r""":func:`message_partners`."""
        return message_partners(state, n_id, self.kept_only)

    def messages(self, state: MemoryState, plan: EventPlan, modules, updated: bool) -> tuple:
        r"""What the state stores of the batch (TGN: :obj:`plan.messages`); a
        model whose messages read :obj:`state` (before the batch; with
        :obj:`updated`, after the pending messages) builds them here."""
        return plan.messages

    def write_back(self, state: MemoryState, plan: EventPlan, memory: Tensor,
                   last_update: Tensor, modules) -> WriteBack:
        r"""The :class:`WriteBack` giving :obj:`plan.n_id` the new rows."""
        return WriteBack(plan.n_id, memory, last_update,
                         self.messages(state, plan, modules, updated=True), plan.t_max)


def move_inputs(inputs, device: torch.device):
    r"""Gathered inputs moved to :obj:`device` without blocking."""
    return type(inputs)(*(_cuda.move(x, device) if isinstance(x, Tensor) else x
                          for x in inputs))
