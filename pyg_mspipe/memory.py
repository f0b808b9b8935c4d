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
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 message_module: Callable, aggregator_module: Callable, *,
                 validate: bool = True):
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
        self.memory.detach_()
        self._cache = None

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
            check_index("n_id", n_id, self.num_nodes, device=self.memory.device)
        if not self.training:
            return self.memory.index_select(0, n_id), self.last_update.index_select(0, n_id)
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
                     msg_dim=self.raw_msg_dim, device=self.memory.device, last_t=last_t)

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
        if self.training and not mode:
            n_id = torch.arange(self.num_nodes, device=self.memory.device)
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
            self._assoc[c_nid] = torch.arange(c_nid.numel(), device=c_nid.device)
            pos = self._assoc.index_select(0, n_id).clamp_(0, max(c_nid.numel() - 1, 0))
            if c_nid.numel() > 0 and bool((c_nid.index_select(0, pos) == n_id).all()):
                return c_mem.index_select(0, pos), c_lu.index_select(0, pos)
        return self._get_updated_memory(n_id)

    def _store(self, plan: _UpdatePlan):
        self.msg_store.insert_planned(plan.store_plan)
        self._last_t.copy_(torch.maximum(self._last_t, plan.t_max))

    def _write(self, n_id: Tensor, memory: Tensor, last_update: Tensor):
        self.memory[n_id] = memory
        self.last_update[n_id] = last_update

    def _uses_last_identity(self) -> bool:
        return (_is_last_aggregator(self.aggr_module)
                and _is_identity_message(self.msg_s_module)
                and _is_identity_message(self.msg_d_module))

    def _get_updated_memory(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        if self._uses_last_identity():
            return self._get_updated_memory_last(n_id)
        num = n_id.numel()
        store = self.msg_store
        slots = torch.cat([n_id, n_id + self.num_nodes])
        cnt = store.cnt[slots]
        # Rows of all source-side slots first, then all destination-side ones:
        # PyG's concatenation order.
        rows, owner = store.locate(slots, cnt)
        owner = owner.remainder(num) if num else owner
        t = store.t.index_select(0, rows)
        mem_n = self.memory.index_select(0, n_id)
        num_s = int(cnt[:num].sum())
        other = store.other.index_select(0, rows)
        raw = store.msg.index_select(0, rows).to(mem_n.dtype)
        lu_key = self.last_update.index_select(0, n_id).index_select(0, owner)
        t_enc = self.time_enc((t - lu_key).to(raw.dtype))
        z_key, z_other = mem_n.index_select(0, owner), self.memory.index_select(0, other)
        msg_s = self.msg_s_module(z_key[:num_s], z_other[:num_s], raw[:num_s], t_enc[:num_s])
        msg_d = self.msg_d_module(z_key[num_s:], z_other[num_s:], raw[num_s:], t_enc[num_s:])
        msg = torch.cat([msg_s, msg_d], dim=0)
        aggr = self.aggr_module(msg, owner, t, num)
        memory = self.gru(aggr, mem_n)
        last_update = scatter_max_long(t, owner, num)
        return memory, last_update

    def _get_updated_memory_last(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        # LastAggregator keeps one message per node and IdentityMessage works
        # row by row (both directions alike), so only the kept message of each
        # node is built: same values, same gradients (PyG's dropped rows get
        # zero gradient). The store knows each slot's last message already:
        # node v keeps its source-side last message unless the destination-side
        # one is strictly newer (ties go to the source side, which PyG lists
        # first). (index_select: several times faster than x[idx] on the CPU.)
        store = self.msg_store
        num = n_id.numel()
        slots = torch.cat([n_id, n_id + self.num_nodes])
        has_slot = store.cnt.index_select(0, slots) > 0
        row_slot = store.last.index_select(0, slots)
        t_slot = store.t.index_select(0, row_slot)
        has_s, has_d = has_slot[:num], has_slot[num:]
        t_s, t_d = t_slot[:num], t_slot[num:]
        use_s = has_s & (~has_d | (t_s >= t_d))
        has = has_s | has_d
        row = torch.where(use_s, row_slot[:num], row_slot[num:])
        t_win = torch.where(use_s, t_s, t_d)

        t_rel = t_win - self.last_update.index_select(0, n_id)
        t_enc = self.time_enc(t_rel.to(self.memory.dtype))
        other = store.other.index_select(0, row)
        last_update = torch.where(has, t_win, t_win.new_zeros(()))
        # Nodes without any pending message get a zero GRU input (as in PyG).
        if self.memory.is_cuda:  # no host sync: mask every row; fused GRU kernel
            mem_n = self.memory.index_select(0, n_id)
            raw = store.msg.index_select(0, row).to(mem_n.dtype)
            msg = torch.cat([mem_n, self.memory.index_select(0, other), raw, t_enc], dim=-1)
            msg = torch.where(has.unsqueeze(-1), msg, msg.new_zeros(()))
            return self.gru(msg, mem_n), last_update
        # CPU: [memory, other's memory, raw message] (an input that needs no
        # gradient), gathered straight into one buffer when possible.
        dim = self.memory_dim
        if store.msg.dtype == self.memory.dtype and not self.memory.requires_grad:
            plain = self.memory.new_empty(num, 2 * dim + store.msg.size(1))
            torch.index_select(self.memory, 0, n_id, out=plain[:, :dim])
            torch.index_select(self.memory, 0, other, out=plain[:, dim:2 * dim])
            torch.index_select(store.msg, 0, row, out=plain[:, 2 * dim:])
        else:  # (out= does not record gradients)
            plain = torch.cat([self.memory.index_select(0, n_id),
                               self.memory.index_select(0, other),
                               store.msg.index_select(0, row).to(self.memory.dtype)], dim=-1)
        h = plain[:, :dim]
        missing = (~has).nonzero().view(-1)  # usually few rows: zero in place
        if missing.numel():
            h = h.clone()  # the hidden state keeps its memory
            plain = plain.index_fill(0, missing, 0.0) if plain.requires_grad \
                else plain.index_fill_(0, missing, 0.0)
            t_enc = t_enc.index_fill(0, missing, 0.0)
        return self._gru_split(plain, t_enc, h), last_update

    def _gru_split(self, plain: Tensor, t_enc: Tensor, h: Tensor) -> Tensor:
        # GRUCell(cat([plain, t_enc]), h) with the input projection split in
        # two: only the time-encoding block needs an input gradient, so the
        # backward pass skips most of the input-gradient GEMM. The gate
        # arithmetic is ATen's CPU gru_cell, op for op.
        gru = self.gru
        if not isinstance(gru, torch.nn.GRUCell) or gru.bias_ih is None:
            return gru(torch.cat([plain, t_enc], dim=-1), h)
        k = plain.size(-1)
        w_ih = gru.weight_ih
        igates = torch.addmm(torch.addmm(gru.bias_ih, t_enc, w_ih[:, k:].t()),
                             plain, w_ih[:, :k].t())
        hgates = torch.addmm(gru.bias_hh, h, gru.weight_hh.t())
        i_r, i_z, i_n = igates.unsafe_chunk(3, 1)
        h_r, h_z, h_n = hgates.unsafe_chunk(3, 1)
        reset_gate = h_r.add_(i_r).sigmoid_()
        input_gate = h_z.add_(i_z).sigmoid_()
        new_gate = i_n.add(h_n.mul_(reset_gate)).tanh_()
        return (h - new_gate).mul_(input_gate).add_(new_gate)

    # ---------------------------------------------------------- persistence
    def get_extra_state(self) -> dict:
        return {"version": 1, "last_t": self._last_t.clone()}

    def set_extra_state(self, state: dict):
        if not isinstance(state, dict) or state.get("version") != 1:
            raise RuntimeError("TGNMemory: unsupported extra state in checkpoint")
        self._last_t.copy_(state["last_t"])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # PyG's TGNMemory has no extra state: its checkpoints load too.
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        key = prefix + "_extra_state"
        if key in missing_keys:
            missing_keys.remove(key)
        self._touch()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim})")
