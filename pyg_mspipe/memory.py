r"""A fast, exact drop-in replacement for PyG's :class:`TGNMemory`."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch_geometric.typing
from torch import Tensor
from torch.nn import GRUCell
from torch_geometric.nn.models import tgn as pyg_tgn

from pyg_mspipe._registry import LiveInstances
from pyg_mspipe._scatter import scatter_max_long
from pyg_mspipe.aggregators import LastAggregator
from pyg_mspipe.mailbox import MessageStore
from pyg_mspipe.message import IdentityMessage
from pyg_mspipe.time_encoder import TimeEncoder
from pyg_mspipe.validation import check_events, check_index

__all__ = ["TGNMemory"]

_LIVE = LiveInstances()  # for TemporalDataLoader(memory="auto")


class _UpdatePlan(NamedTuple):
    src: Tensor
    dst: Tensor
    t: Tensor
    raw_msg: Tensor
    n_id: Tensor  # the batch's nodes, sorted
    store_plan: tuple  # MessageStore.plan of the batch's messages
    t_min: Tensor
    t_max: Tensor


class _LastInputs(NamedTuple):
    # What the memory update of nodes reads from the state, LastAggregator +
    # IdentityMessage: [memory, other endpoint's memory, raw message] of each
    # node's kept message, its time relative to the node's last update,
    # whether it has one, and the resulting last update.
    plain: Tensor
    t_rel: Tensor
    has: Tensor
    last_update: Tensor
    dim: int


class _GeneralInputs(NamedTuple):
    # Same for any message module and aggregator: every pending message.
    mem_n: Tensor
    owner: Tensor
    num_s: int
    t: Tensor
    lu_key: Tensor
    z_other: Tensor
    raw: Tensor


def _move(inputs, device: torch.device, pin: bool = False):
    # Gathered inputs to `device`; with `pin`, host tensors go through pinned
    # memory and non-blocking copies (a fresh staging buffer per call).
    def move(x):
        if not isinstance(x, Tensor) or x.device == device:
            return x
        if pin and x.device.type == "cpu":
            x = x.pin_memory()
        return x.to(device, non_blocking=pin)
    if inputs[0].device == device:
        return inputs
    return type(inputs)(*(move(x) for x in inputs))


def _gru_last(gru: GRUCell, plain: Tensor, t_enc: Tensor, missing: Tensor) -> Tensor:
    # GRUCell(cat([plain, t_enc]), h) where h = plain[:, :d] is the input's
    # first block (IdentityMessage: [memory, other's memory, raw message,
    # time encoding]), except in the rows `missing`, whose input is zero (no
    # pending message). Same function, less work than ATen's gru_cell:
    # * h is multiplied once by the summed weights of the r and z gates
    #   (W_ih[:2d, :d] + W_hh[:2d]; ATen multiplies it by both and adds);
    # * the input projection is split in two, so that the backward pass only
    #   computes the input gradient of the time-encoding block (the only one
    #   that needs it);
    # * the zero-input rows are recomputed from the hidden projection alone.
    # The gate arithmetic is elementwise that of ATen's CPU gru_cell.
    d = gru.hidden_size
    k = plain.size(-1)
    h = plain[:, :d]
    w_ih, w_hh, b_ih, b_hh = gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh
    weight = w_ih[:, :k].clone()
    weight[:2 * d, :d] += w_hh[:2 * d]
    bias = b_ih.clone()
    bias[:2 * d] += b_hh[:2 * d]
    # (in place: the backward of addmm needs neither output)
    gates = torch.addmm(bias, plain, weight.t()).addmm_(t_enc, w_ih[:, k:].t())
    if missing.numel():
        h_m = h.index_select(0, missing)
        gates_m = torch.cat([torch.addmm(bias[:2 * d], h_m, w_hh[:2 * d].t()),
                             b_ih[2 * d:].expand(missing.numel(), d)], dim=1)
        gates.index_copy_(0, missing, gates_m)
    h_n = torch.addmm(b_hh[2 * d:], h, w_hh[2 * d:].t())
    gates[:, :2 * d].sigmoid_()  # the r and z gates in one pass
    reset_gate, input_gate, i_n = gates.unsafe_chunk(3, 1)
    new_gate = i_n.add(h_n.mul_(reset_gate)).tanh_()
    return (h - new_gate).mul_(input_gate).add_(new_gate)


def _is_last_aggregator(module) -> bool:
    # PyG's LastAggregator equals ours only with torch_scatter; without it,
    # PyG's fallback breaks ties differently, so we keep calling it as is.
    return isinstance(module, LastAggregator) or (
        isinstance(module, pyg_tgn.LastAggregator) and torch_geometric.typing.WITH_TORCH_SCATTER)


def _is_identity_message(module) -> bool:
    return isinstance(module, (IdentityMessage, pyg_tgn.IdentityMessage))


class TGNMemory(torch.nn.Module):
    r"""The Temporal Graph Network (TGN) memory model from the
    `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ paper, as a drop-in replacement for
    :class:`torch_geometric.nn.TGNMemory`.

    Same constructor, methods, submodules, parameter and buffer names and
    numbers as PyG's, so that a PyG :obj:`state_dict` loads into it, but:

    * pending messages live in a vectorised :class:`~pyg_mspipe.MessageStore`
      (no Python dict, no per-node loop or host synchronisation);
    * the whole state (memory, last update, pending messages) is in
      :meth:`state_dict` and moves with :meth:`to`;
    * :meth:`update_state` reuses the memory that :meth:`forward` computed for
      the same nodes in the same iteration instead of recomputing it (only when
      neither the state nor any parameter changed in between);
    * with :class:`LastAggregator` and :class:`IdentityMessage`, messages are
      only built for the message each node keeps (same values and gradients).

    Args:
        num_nodes (int): The number of nodes to save memories for.
        raw_msg_dim (int): The raw message dimensionality.
        memory_dim (int): The hidden memory dimensionality.
        time_dim (int): The time encoding dimensionality.
        message_module (torch.nn.Module): The message function which combines
            source and destination node memory embeddings, the raw message
            and the time encoding.
        aggregator_module (torch.nn.Module): The message aggregator function
            which aggregates messages to the same destination into a single
            representation.
        validate (bool, optional): Check inputs (node ids in range, dtypes,
            shapes, finite messages, timestamps sorted within and across
            batches) before touching any state. On a GPU this costs one host
            synchronisation per call. (default: :obj:`True`)
        storage (str or torch.device, optional): Where the state (memory,
            last update, pending messages) lives. :obj:`None` keeps it with
            the parameters (moved by :meth:`to`). :obj:`"cpu"` keeps it in host
            memory (pinned when CUDA is available) wherever :meth:`to` moves
            the parameters, so a graph whose memory exceeds GPU memory trains
            on the GPU: each call gathers the rows it needs and writes back the
            rows it changed. With a pipelined
            :class:`~pyg_mspipe.TemporalDataLoader` those transfers overlap
            training. (default: :obj:`None`)
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 message_module: Callable, aggregator_module: Callable, *,
                 validate: bool = True, storage: str | torch.device | None = None):
        super().__init__()
        for name, value in (("num_nodes", num_nodes), ("raw_msg_dim", raw_msg_dim),
                            ("memory_dim", memory_dim), ("time_dim", time_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        if not hasattr(message_module, "out_channels"):
            raise TypeError("'message_module' must define 'out_channels' (like IdentityMessage)")

        self.num_nodes = num_nodes
        self.raw_msg_dim = raw_msg_dim
        self.memory_dim = memory_dim
        self.time_dim = time_dim
        self.validate = validate
        if storage is not None:
            storage = torch.device(storage)
            if storage.type != "cpu":
                raise ValueError(f"'storage' must be None or 'cpu' (got {storage!r})")
        self.storage = storage

        self.msg_s_module = message_module
        self.msg_d_module = copy.deepcopy(message_module)
        self.aggr_module = aggregator_module
        self.time_enc = TimeEncoder(time_dim)
        self.gru = GRUCell(message_module.out_channels, memory_dim)

        self.register_buffer("memory", torch.empty(num_nodes, memory_dim))
        self.register_buffer("last_update", torch.empty(num_nodes, dtype=torch.long))
        # (scratch space; zeros rather than garbage: deterministic checkpoints)
        self.register_buffer("_assoc", torch.zeros(num_nodes, dtype=torch.long))
        # Largest timestamp stored so far (for the "sorted across batches" check).
        self.register_buffer("_last_t", torch.zeros((), dtype=torch.long), persistent=False)

        # Pending messages: slot v as a source (PyG's msg_s_store), slot
        # num_nodes + v as a destination (PyG's msg_d_store).
        self.msg_store = MessageStore(2 * num_nodes, raw_msg_dim)

        self._cache: tuple | None = None
        self._state_version = 0
        self._offered: _UpdatePlan | None = None  # prepared by a loader
        self._pipeline = None  # the MemoryPipeline of a pipelined epoch, if any
        _LIVE.add(self)

        self.reset_parameters()

    @staticmethod
    def the_only_live_instance() -> TGNMemory | None:
        r"""The only live :class:`TGNMemory`, or :obj:`None` if there are
        none or several."""
        return _LIVE.only()

    @property
    def device(self) -> torch.device:
        r"""The device of the module's parameters."""
        return self.time_enc.lin.weight.device

    # ------------------------------------------------------------------ reset
    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        if hasattr(self.msg_s_module, "reset_parameters"):
            self.msg_s_module.reset_parameters()
        if hasattr(self.msg_d_module, "reset_parameters"):
            self.msg_d_module.reset_parameters()
        if hasattr(self.aggr_module, "reset_parameters"):
            self.aggr_module.reset_parameters()
        self.time_enc.reset_parameters()
        self.gru.reset_parameters()
        self.reset_state()

    def reset_state(self):
        r"""Resets the memory to its initial state (O(1) Python work)."""
        self._sync()
        self.memory.detach_()
        self.memory.zero_()
        self.last_update.zero_()
        self._last_t.zero_()
        self._reset_message_store()

    def _reset_message_store(self):
        self.msg_store.clear()
        self._touch()

    def detach(self):
        r"""Detaches the memory from gradient computation."""
        if self.memory.requires_grad:  # (never while a pipeline writes it)
            self.memory.detach_()
        self._cache = None

    def _sync(self):
        # Commit the pending write-backs of a pipelined epoch before the state
        # is read or changed from outside the pipeline.
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.drain()

    def _touch(self):
        self._state_version += 1
        self._cache = None

    # ---------------------------------------------------------------- forward
    def forward(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns, for all nodes :obj:`n_id`, their current memory and their
        last updated timestamp (in training mode: updated with their pending
        messages, differentiably).

        Args:
            n_id (torch.Tensor): Node ids, :obj:`[n]`.
        """
        if self.validate:
            check_index("n_id", n_id, self.num_nodes, device=self.device)
        if self._pipeline is not None and self.training:
            return self._pipeline.forward(n_id)
        self._sync()
        if not self.training:
            state_id = n_id.to(self.memory.device)
            return (self.memory.index_select(0, state_id).to(n_id.device),
                    self.last_update.index_select(0, state_id).to(n_id.device))
        memory, last_update = self._get_updated_memory(n_id)
        self._cache = (self._cache_key(), n_id, memory, last_update)
        return memory, last_update

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor):
        r"""Updates the memory with newly encountered interactions
        :obj:`(src, dst, t, raw_msg)`.

        In training mode the pending messages of the batch's nodes are applied
        first, then the batch's messages become their pending messages. In
        evaluation mode the messages are stored first and applied at once.

        Args:
            src (torch.Tensor): Source node ids, :obj:`[B]`.
            dst (torch.Tensor): Destination node ids, :obj:`[B]`.
            t (torch.Tensor): Timestamps, :obj:`[B]`.
            raw_msg (torch.Tensor): Raw messages, :obj:`[B, raw_msg_dim]`.
        """
        if self._pipeline is not None and self.training:
            return self._pipeline.update_state(src, dst, t, raw_msg)
        self._sync()
        plan = self._take_update(src, dst, t, raw_msg)
        if plan is None or (self.validate and bool(plan.t_min < self._last_t)):
            if self.validate:
                self._check_events(src, dst, t, raw_msg, last_t=self._last_t)
            if src.numel() == 0:
                return
            plan = self._plan_update(src, dst, t, raw_msg)
        if self.training:
            memory, last_update = self._updated_memory_for_update(plan.n_id)
            self._store(plan)
            self._write(plan.n_id, memory, last_update)
        else:
            self._store(plan)
            memory, last_update = self._get_updated_memory(plan.n_id)
            self._write(plan.n_id, memory, last_update)
        self._touch()

    def prepare_update(self, src: Tensor, dst: Tensor, t: Tensor,
                       raw_msg: Tensor) -> _UpdatePlan | None:
        r"""Computes ahead of time, from the events alone, what
        :meth:`update_state` needs (validation, the batch's nodes, the layout
        of its messages in the store). Reads no state, so a background thread
        may call it. Returns :obj:`None` for events :meth:`update_state` would
        reject (it then raises there)."""
        if self.validate:
            try:
                self._check_events(src, dst, t, raw_msg)
            except (ValueError, TypeError):
                return None
        return self._plan_update(src, dst, t, raw_msg)

    def _check_events(self, src, dst, t, raw_msg, last_t: Tensor | None = None):
        check_events(src, dst, t, raw_msg, num_nodes=self.num_nodes,
                     msg_dim=self.raw_msg_dim, device=self.device, last_t=last_t)

    def _offer_update(self, plan: _UpdatePlan | None):
        self._offered = plan

    def _take_update(self, src, dst, t, raw_msg) -> _UpdatePlan | None:
        plan, self._offered = self._offered, None
        if plan is not None and plan.src is src and plan.dst is dst and plan.t is t \
                and plan.raw_msg is raw_msg:
            return plan
        return None

    def _plan_update(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> _UpdatePlan:
        # Each side sorted on its own with PyG's (not stable) sort call, so that
        # equal-key rows come in PyG's order; slots < N precede slots >= N.
        src_sorted, perm_s = src.sort()
        dst_sorted, perm_d = dst.sort()
        perm = torch.cat([perm_s, perm_d])
        store_plan = MessageStore.plan(
            torch.cat([src_sorted, dst_sorted + self.num_nodes]),
            torch.cat([dst.index_select(0, perm_s), src.index_select(0, perm_d)]),
            t.index_select(0, perm),
            raw_msg.index_select(0, perm).to(self.msg_store.msg.dtype),
        )
        t_min, t_max = torch.aminmax(t)
        return _UpdatePlan(src, dst, t, raw_msg, torch.cat([src, dst]).unique(), store_plan,
                           t_min, t_max)

    def train(self, mode: bool = True):
        r"""Sets the module in training mode. Leaving training mode flushes all
        pending messages into the memory (as PyG does)."""
        self._sync()
        if self.training and not mode:
            n_id = torch.arange(self.num_nodes, device=self.device)
            memory, last_update = self._get_updated_memory(n_id)
            self._write(n_id, memory, last_update)
            self._reset_message_store()
        return super().train(mode)

    # ---------------------------------------------------------------- helpers
    def _cache_key(self) -> tuple:
        return (self._state_version, self.memory._version, self.last_update._version,
                tuple(p._version for p in self.parameters()),
                tuple(id(p) for p in self.parameters()))

    def _updated_memory_for_update(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        cache, self._cache = self._cache, None
        if cache is not None and cache[0] == self._cache_key():
            _, c_nid, c_mem, c_lu = cache
            last = c_nid.numel() - 1
            if last >= 0:
                # forward's n_id is usually sorted (LastNeighborLoader's is):
                # binary search; otherwise look the positions up by node id.
                pos = torch.searchsorted(c_nid, n_id).clamp_(max=last)
                found = bool((c_nid.index_select(0, pos) == n_id).all())
                if not found:
                    self._assoc[c_nid] = torch.arange(last + 1, device=c_nid.device)
                    pos = self._assoc.index_select(0, n_id).clamp_(0, last)
                    found = bool((c_nid.index_select(0, pos) == n_id).all())
                if found:
                    return c_mem.index_select(0, pos), c_lu.index_select(0, pos)
        return self._get_updated_memory(n_id)

    def _store(self, plan: _UpdatePlan):
        store_plan = plan.store_plan
        if store_plan[0].device != self.memory.device:
            store_plan = tuple(x.to(self.memory.device) for x in store_plan)
        self.msg_store.insert_planned(store_plan)
        self._last_t.copy_(torch.maximum(self._last_t, plan.t_max))

    def _write(self, n_id: Tensor, memory: Tensor, last_update: Tensor):
        device = self.memory.device
        if n_id.device != device:
            n_id, memory, last_update = (x.to(device) for x in (n_id, memory, last_update))
        self.memory[n_id] = memory
        self.last_update[n_id] = last_update

    def _uses_last_identity(self) -> bool:
        return (_is_last_aggregator(self.aggr_module)
                and _is_identity_message(self.msg_s_module)
                and _is_identity_message(self.msg_d_module))

    def _get_updated_memory(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        inputs = self._gather(n_id.to(self.memory.device))
        return self._compute(_move(inputs, n_id.device), self)

    # The memory update of a set of nodes in two halves: `_gather` reads
    # everything it needs from the state (memory rows, pending messages, the
    # other endpoints' memory), `_compute` turns that into the new memory with
    # the module's parameters and reads no state. The pipeline gathers ahead
    # of time (possibly from a stale state) and computes on the training
    # thread; the sequential path does both at once.
    def _gather(self, n_id: Tensor):
        if self._uses_last_identity():
            return self._gather_last(n_id)
        return self._gather_general(n_id)

    @staticmethod
    def _compute(inputs, mods) -> tuple[Tensor, Tensor]:
        if isinstance(inputs, _LastInputs):
            return TGNMemory._compute_last(inputs, mods)
        return TGNMemory._compute_general(inputs, mods)

    def _message_partners(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        # The other endpoints of the pending messages that the memory update
        # of `n_id` reads, and the position in `n_id` of the node each
        # belongs to: that update also depends on their memory.
        store = self.msg_store
        num = n_id.numel()
        slots = torch.cat([n_id, n_id + self.num_nodes])
        if self._uses_last_identity():
            has, row, _ = self._kept_messages(n_id)
            pos = has.nonzero().view(-1)
            return pos, store.other.index_select(0, row.index_select(0, pos))
        rows, owner = store.locate(slots)
        return (owner.remainder(num) if num else owner), store.other.index_select(0, rows)

    def _gather_general(self, n_id: Tensor) -> _GeneralInputs:
        num = n_id.numel()
        store = self.msg_store
        slots = torch.cat([n_id, n_id + self.num_nodes])
        cnt = store.cnt[slots]
        # Rows of all source-side slots first, then all destination-side ones:
        # PyG's concatenation order.
        rows, owner = store.locate(slots, cnt)
        owner = owner.remainder(num) if num else owner
        mem_n = self.memory.index_select(0, n_id)
        return _GeneralInputs(
            mem_n=mem_n, owner=owner, num_s=int(cnt[:num].sum()),
            t=store.t.index_select(0, rows),
            lu_key=self.last_update.index_select(0, n_id).index_select(0, owner),
            z_other=self.memory.index_select(0, store.other.index_select(0, rows)),
            raw=store.msg.index_select(0, rows).to(mem_n.dtype))

    @staticmethod
    def _compute_general(inputs: _GeneralInputs, mods) -> tuple[Tensor, Tensor]:
        mem_n, owner, num_s, t, lu_key, z_other, raw = inputs
        num = mem_n.size(0)
        t_enc = mods.time_enc((t - lu_key).to(raw.dtype))
        z_key = mem_n.index_select(0, owner)
        msg_s = mods.msg_s_module(z_key[:num_s], z_other[:num_s], raw[:num_s], t_enc[:num_s])
        msg_d = mods.msg_d_module(z_key[num_s:], z_other[num_s:], raw[num_s:], t_enc[num_s:])
        msg = torch.cat([msg_s, msg_d], dim=0)
        aggr = mods.aggr_module(msg, owner, t, num)
        memory = mods.gru(aggr, mem_n)
        last_update = scatter_max_long(t, owner, num)
        return memory, last_update

    def _kept_messages(self, n_id: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # LastAggregator keeps one message per node. The store knows each
        # slot's last message and its time already (EMPTY_T, below any time,
        # for a slot without messages): node v keeps its source-side last
        # message unless the destination-side one is strictly newer (ties go
        # to the source side, which PyG lists first). Returns, per node,
        # whether it has a message, its arena row and its time.
        # (index_select: several times faster than x[idx] on the CPU.)
        store = self.msg_store
        num = n_id.numel()
        slots = torch.cat([n_id, n_id + self.num_nodes])
        row_slot = store.last.index_select(0, slots)
        t_slot = store.last_t.index_select(0, slots)
        t_s, t_d = t_slot[:num], t_slot[num:]
        use_s = t_s >= t_d
        row = torch.where(use_s, row_slot[:num], row_slot[num:])
        t_win = torch.maximum(t_s, t_d)
        return t_win != store.EMPTY_T, row, t_win

    def _gather_last(self, n_id: Tensor) -> _LastInputs:
        # IdentityMessage works row by row (both directions alike), so only
        # the kept message of each node is built: same values, same gradients
        # (PyG's dropped rows get zero gradient).
        store = self.msg_store
        num = n_id.numel()
        has, row, t_win = self._kept_messages(n_id)
        t_rel = t_win - self.last_update.index_select(0, n_id)
        other = store.other.index_select(0, row)
        last_update = torch.where(has, t_win, t_win.new_zeros(()))
        # [memory, other's memory, raw message]: the part of the GRU input
        # that needs no gradient, gathered straight into one buffer when
        # possible (out= does not record gradients).
        dim = self.memory_dim
        if store.msg.dtype == self.memory.dtype and not self.memory.requires_grad:
            plain = self.memory.new_empty(num, 2 * dim + store.msg.size(1))
            torch.index_select(self.memory, 0, n_id, out=plain[:, :dim])
            torch.index_select(self.memory, 0, other, out=plain[:, dim:2 * dim])
            torch.index_select(store.msg, 0, row, out=plain[:, 2 * dim:])
        else:
            plain = torch.cat([self.memory.index_select(0, n_id),
                               self.memory.index_select(0, other),
                               store.msg.index_select(0, row).to(self.memory.dtype)], dim=-1)
        return _LastInputs(plain, t_rel, has, last_update, dim)

    @staticmethod
    def _compute_last(inputs: _LastInputs, mods) -> tuple[Tensor, Tensor]:
        plain, t_rel, has, last_update, dim = inputs
        t_enc = mods.time_enc(t_rel.to(plain.dtype))
        h = plain[:, :dim]
        # Nodes without any pending message get a zero GRU input (as in PyG).
        if plain.is_cuda:  # no host sync: mask every row; fused GRU kernel
            msg = torch.cat([plain, t_enc], dim=-1)
            msg = torch.where(has.unsqueeze(-1), msg, msg.new_zeros(()))
            return mods.gru(msg, h), last_update
        missing = (~has).nonzero().view(-1)  # usually few rows
        gru = mods.gru
        if isinstance(gru, GRUCell) and gru.bias_ih is not None:
            return _gru_last(gru, plain, t_enc, missing), last_update
        msg = torch.cat([plain, t_enc], dim=-1)
        if missing.numel():
            msg = msg.index_fill(0, missing, 0.0)
        return gru(msg, h), last_update

    # ---------------------------------------------------------- persistence
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self._sync()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    _STATE_BUFFERS = ("memory", "last_update")

    def _apply(self, fn, recurse=True):
        self._sync()
        if self.storage is None:
            return super()._apply(fn, recurse)
        # The state stays in host memory; only a dtype change applies to it.
        held = [(self, name, self._buffers.pop(name)) for name in self._STATE_BUFFERS]
        held += [(self.msg_store, name, self.msg_store._buffers.pop(name))
                 for name in list(self.msg_store._buffers)]
        try:
            super()._apply(fn, recurse)
        finally:
            for module, name, buf in held:
                dtype = fn(torch.empty(0, dtype=buf.dtype)).dtype
                buf = buf.to(self.storage, dtype)
                if torch.cuda.is_available() and not buf.is_pinned():
                    buf = buf.pin_memory()
                module._buffers[name] = buf
        self._touch()
        return self

    def get_extra_state(self) -> dict:
        return {"version": 1, "last_t": self._last_t.clone()}

    def set_extra_state(self, state: dict):
        if not isinstance(state, dict) or state.get("version") != 1:
            raise RuntimeError("TGNMemory: unsupported extra state in checkpoint")
        self._last_t.copy_(state["last_t"])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # PyG's TGNMemory has no extra state: its checkpoints load too.
        self._sync()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        key = prefix + "_extra_state"
        if key in missing_keys:
            missing_keys.remove(key)
        self._touch()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim}"
                + ("" if self.storage is None else f", storage='{self.storage}'") + ")")
