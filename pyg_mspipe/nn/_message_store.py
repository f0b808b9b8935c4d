r"""A vectorised store of pending TGN messages (see ``docs/architecture.md``)."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from pyg_mspipe import _cuda


class StorePlan(NamedTuple):
    r"""A batch's rows laid out for :meth:`MessageStore.insert_planned`."""
    key_sorted: Tensor
    other: Tensor
    t: Tensor
    msg: Tensor
    group_start: Tensor
    group_cnt: Tensor
    group_last: Tensor
    group_last_t: Tensor


class MessageStore(torch.nn.Module):
    r"""Pending messages of the TGN memory: for every slot :obj:`k`, the rows
    ``(other endpoint, t, raw_msg)`` of the events of the most recent batch
    stored under :obj:`k`. :class:`~pyg_mspipe.TGNMemory` uses slot :obj:`v`
    for PyG's ``msg_s_store`` and :obj:`num_nodes + v` for ``msg_d_store``.
    The content is part of :meth:`state_dict` (compacted).

    Args:
        num_slots (int): Number of slots.
        raw_msg_dim (int): Raw message dimensionality.
        capacity (int, optional): Initial number of arena rows; the arena grows
            on demand. (default: :obj:`1024`)
    """

    #: :attr:`kept_t` of a slot without messages (below any timestamp).
    EMPTY_T = torch.iinfo(torch.long).min

    def __init__(self, num_slots: int, raw_msg_dim: int, capacity: int = 1024):
        super().__init__()
        self.num_slots = num_slots
        self.raw_msg_dim = raw_msg_dim
        capacity = max(int(capacity), 1)
        self.register_buffer("ptr", torch.zeros(num_slots, dtype=torch.long), persistent=False)
        self.register_buffer("cnt", torch.zeros(num_slots, dtype=torch.long), persistent=False)
        # per slot, the arena row of the message LastAggregator keeps
        self.register_buffer("last", torch.zeros(num_slots, dtype=torch.long), persistent=False)
        # ... and that message's time, or EMPTY_T for a slot without messages.
        self.register_buffer("kept_t", torch.full((num_slots,), self.EMPTY_T, dtype=torch.long),
                             persistent=False)
        self.register_buffer("other", torch.zeros(capacity, dtype=torch.long), persistent=False)
        self.register_buffer("t", torch.zeros(capacity, dtype=torch.long), persistent=False)
        self.register_buffer("msg", torch.zeros(capacity, raw_msg_dim), persistent=False)
        # per arena row, the slot it was written for
        self.register_buffer("slot", torch.zeros(capacity, dtype=torch.long), persistent=False)
        self._size = 0  # arena rows in use (live and garbage)
        self._pinned = False  # keep (re)allocated buffers in pinned memory

    # ------------------------------------------------------------------ state
    @property
    def capacity(self) -> int:
        r"""Number of rows the arena holds before it must be compacted."""
        return self.other.numel()

    @property
    def arena_size(self) -> int:
        r"""Number of arena rows written since the last compaction."""
        return self._size

    def num_messages(self) -> int:
        r"""Number of pending (live) messages (time linear in the arena)."""
        return int(self._live_mask().sum())

    def clear(self):
        r"""Forgets all pending messages (keeps capacity)."""
        self.cnt.zero_()
        self.ptr.zero_()
        self.last.zero_()
        self.kept_t.fill_(self.EMPTY_T)
        self._size = 0

    # --------------------------------------------------------------- queries
    def locate(self, n_id: Tensor, cnt: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""The pending arena rows of the slots :obj:`n_id`, grouped by
        position in :obj:`n_id` in PyG's per-node order, and for each row its
        position in :obj:`n_id` (:obj:`cnt`: :obj:`self.cnt[n_id]` if known)."""
        cnt = self.cnt.index_select(0, n_id) if cnt is None else cnt
        total = int(cnt.sum())
        if total == 0:
            empty = n_id.new_empty(0)
            return empty, empty
        ptr = self.ptr.index_select(0, n_id)
        owner = torch.repeat_interleave(
            torch.arange(n_id.numel(), device=n_id.device), cnt, output_size=total
        )
        start = cnt.cumsum(0) - cnt
        rows = torch.arange(total, device=n_id.device) + (ptr - start).index_select(0, owner)
        return rows, owner

    # --------------------------------------------------------------- updates
    def insert(self, key: Tensor, other: Tensor, t: Tensor, msg: Tensor):
        r"""Stores one batch: for every node in :obj:`key`, its pending rows
        become exactly its events of this batch.

        Args:
            key (torch.Tensor): Key endpoint of each event, :obj:`[B]`.
            other (torch.Tensor): Other endpoint of each event, :obj:`[B]`.
            t (torch.Tensor): Timestamps, :obj:`[B]`.
            msg (torch.Tensor): Raw messages, :obj:`[B, raw_msg_dim]`.
        """
        if key.numel() == 0:
            return
        # PyG's (not stable) sort: its order decides LastAggregator's ties
        key_sorted, perm = key.sort()
        self.insert_planned(self.plan(key_sorted, other.index_select(0, perm),
                                      t.index_select(0, perm), msg.index_select(0, perm)))

    @staticmethod
    def plan(key_sorted: Tensor, other: Tensor, t: Tensor, msg: Tensor) -> StorePlan:
        r"""What storing rows grouped by slot (:obj:`key_sorted`
        non-decreasing) computes from the rows alone; reads no state."""
        num = key_sorted.numel()
        # per row, where its slot's group starts and ends (the scatters in
        # insert_planned write one value per slot: deterministic)
        group_start = torch.searchsorted(key_sorted, key_sorted)
        group_end = torch.searchsorted(key_sorted, key_sorted, right=True)
        # The slot's last message: the first of its rows with the largest t.
        group_max = t.new_zeros(num).scatter_reduce_(0, group_start, t, reduce="amax",
                                                     include_self=False)
        local = torch.arange(num, device=key_sorted.device)
        cand = torch.where(t == group_max.index_select(0, group_start), local, num)
        group_win = torch.full_like(local, num).scatter_reduce_(0, group_start, cand,
                                                                reduce="amin")
        return StorePlan(key_sorted, other, t, msg, group_start, group_end - group_start,
                         group_win.index_select(0, group_start),
                         group_max.index_select(0, group_start))

    def insert_planned(self, plan: StorePlan):
        r"""Writes a batch prepared by :meth:`plan`."""
        key_sorted, other, t, msg, group_start, group_cnt, group_last, group_last_t = plan
        num = key_sorted.numel()
        if num == 0:
            return
        self._reserve(num)
        start = self._size
        self.other[start:start + num] = other
        self.t[start:start + num] = t
        self.msg[start:start + num] = msg
        self.slot[start:start + num] = key_sorted
        self.cnt.index_put_((key_sorted,), group_cnt)
        self.ptr.index_put_((key_sorted,), group_start + start)
        self.last.index_put_((key_sorted,), group_last + start)
        self.kept_t.index_put_((key_sorted,), group_last_t)
        self._size = start + num

    def _reserve(self, num: int):
        if self._size + num <= self.capacity:
            return
        self.compact()
        need = self._size + num
        if need > self.capacity // 2:
            self._resize(max(2 * need, 2 * self.capacity))

    def _live_mask(self) -> Tensor:
        # a row is live iff it lies in its slot's current range [ptr, ptr + cnt)
        slot = self.slot[: self._size]
        ptr = self.ptr.index_select(0, slot)
        row = torch.arange(self._size, device=slot.device)
        return (row >= ptr) & (row < ptr + self.cnt.index_select(0, slot))

    def compact(self):
        r"""Drops garbage rows from the arena (keeps capacity and the order of
        the live rows). Time linear in :attr:`arena_size`, independent of
        :obj:`num_slots`."""
        live = self._live_mask()
        rows = live.nonzero().view(-1)
        num = rows.numel()
        if num == self._size:
            return
        slot = self.slot.index_select(0, rows)
        # each slot's range moves down by the garbage rows before it; ptr and
        # last are updated once per slot, from the range's first row
        shift = rows - torch.arange(num, device=rows.device)
        first = (rows == self.ptr.index_select(0, slot)).nonzero().view(-1)
        slot_first, shift_first = slot.index_select(0, first), shift.index_select(0, first)
        self.ptr.index_put_((slot_first,), self.ptr.index_select(0, slot_first) - shift_first)
        self.last.index_put_((slot_first,), self.last.index_select(0, slot_first) - shift_first)
        self.other[:num] = self.other.index_select(0, rows)
        self.t[:num] = self.t.index_select(0, rows)
        self.msg[:num] = self.msg.index_select(0, rows)
        self.slot[:num] = slot
        self._size = num

    def _rows_by_slot(self) -> Tensor:
        # All live rows, slot by slot (the checkpoint layout): O(num_slots).
        n_id = torch.arange(self.num_slots, device=self.cnt.device)
        return self.locate(n_id)[0]

    def pin_memory(self) -> MessageStore:
        r"""Keeps the (host) buffers in pinned memory, also when the arena is
        reallocated (nothing without CUDA). Returns :obj:`self`."""
        for name, buf in self._buffers.items():
            if buf is not None:
                self._buffers[name] = _cuda.pin(buf)
        self._pinned = True
        return self

    def _arena_buffer(self, buf: Tensor) -> Tensor:
        return _cuda.pin(buf) if self._pinned else buf

    def _resize(self, capacity: int):
        def grow(buf: Tensor) -> Tensor:
            out = buf.new_zeros((capacity,) + tuple(buf.shape[1:]))
            out[: self._size] = buf[: self._size]
            return self._arena_buffer(out)

        self.other = grow(self.other)
        self.t = grow(self.t)
        self.msg = grow(self.msg)
        self.slot = grow(self.slot)

    # ---------------------------------------------------------- persistence
    def get_extra_state(self) -> dict[str, Any]:
        # live rows slot by slot: `slot` and `ptr` follow from `cnt`
        rows = self._rows_by_slot()
        return {
            "version": 1,
            "cnt": self.cnt.clone(),
            "last": self.last - self.ptr,  # offset within the slot's rows
            "other": self.other[rows],
            "t": self.t[rows],
            "msg": self.msg[rows],
        }

    def set_extra_state(self, state: dict[str, Any]):
        if not isinstance(state, dict) or state.get("version") != 1:
            raise RuntimeError("MessageStore: unsupported extra state in checkpoint")
        cnt = state["cnt"]
        if cnt.shape != self.cnt.shape:
            raise RuntimeError(
                f"MessageStore: checkpoint holds {cnt.numel()} slots, this store {self.num_slots}"
            )
        msg = state["msg"]
        if msg.dim() != 2 or msg.size(1) != self.raw_msg_dim:
            raise RuntimeError(
                f"MessageStore: checkpoint raw_msg_dim {tuple(msg.shape)} does not match "
                f"raw_msg_dim={self.raw_msg_dim}"
            )
        device = self.cnt.device
        num = int(cnt.sum())
        capacity = max(self.capacity, num, 1)
        self.other = torch.zeros(capacity, dtype=torch.long, device=device)
        self.t = torch.zeros(capacity, dtype=torch.long, device=device)
        self.msg = torch.zeros(capacity, self.raw_msg_dim, dtype=self.msg.dtype, device=device)
        self.slot = torch.zeros(capacity, dtype=torch.long, device=device)
        for name in ("other", "t", "msg", "slot"):
            setattr(self, name, self._arena_buffer(getattr(self, name)))
        self.other[:num] = state["other"].to(device)
        self.t[:num] = state["t"].to(device)
        self.msg[:num] = msg.to(device, self.msg.dtype)
        self.cnt.copy_(cnt)
        has = self.cnt > 0
        slots = torch.arange(self.num_slots, device=device)
        self.slot[:num] = torch.repeat_interleave(slots, self.cnt, output_size=num)
        # Slots without messages point at row 0 (never read), as after clear().
        zero = self.cnt.new_zeros(())
        self.ptr.copy_(torch.where(has, self.cnt.cumsum(0) - self.cnt, zero))
        self.last.copy_(torch.where(has, self.ptr + state["last"].to(device), zero))
        self.kept_t.copy_(torch.where(has, self.t.index_select(0, self.last), self.EMPTY_T))
        self._size = num

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # a checkpoint of PyG's TGNMemory has no store: leave it, as PyG does
        if prefix + "_extra_state" not in state_dict:
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f"num_slots={self.num_slots}, raw_msg_dim={self.raw_msg_dim}, "
                f"capacity={self.capacity}")
