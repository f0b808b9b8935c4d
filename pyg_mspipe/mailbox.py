r"""A vectorised store of pending TGN messages.

PyG keeps pending messages in a Python dict ``node -> (src, dst, t, raw_msg)``
rebuilt with per-node Python loops. :class:`MessageStore` holds the same
information in a few flat tensors:

* an append-only *arena* of message rows (``other``, ``t``, ``msg``), written
  one batch at a time, the rows of a batch grouped by key node with the same
  :meth:`torch.Tensor.sort` call PyG uses (so a node's messages are listed in
  exactly PyG's order, which decides :class:`LastAggregator`'s tie-breaking
  between equal timestamps; that sort is not stable);
* per node, a pointer ``ptr`` into the arena and a count ``cnt`` of its rows.

Storing a batch replaces, for every node in it, its pending rows by the rows
of this batch (PyG's semantics: a node's pending messages are *all* its events
from the most recent batch it appeared in). Replaced rows become garbage; when
the arena is full it is compacted (and grown if needed), which costs time
linear in the live rows and is amortised over the batches that filled it.

No Python loop over nodes, and no host synchronisation apart from one scalar
read in :meth:`locate` (the number of rows to gather).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["MessageStore"]


class MessageStore(torch.nn.Module):
    r"""Pending messages of one direction of the TGN memory.

    For every node :obj:`v` it holds all events of the most recent batch in
    which :obj:`v` was the *key* endpoint (the source for the source-side
    store, the destination for the destination-side store), as rows
    ``(other endpoint, t, raw_msg)``.

    The whole content is part of :meth:`state_dict` (compacted, as extra
    state), and :meth:`to` moves it.

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Raw message dimensionality.
        capacity (int, optional): Initial number of arena rows; the arena grows
            on demand. (default: :obj:`1024`)
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, capacity: int = 1024):
        super().__init__()
        self.num_nodes = num_nodes
        self.raw_msg_dim = raw_msg_dim
        capacity = max(int(capacity), 1)
        self.register_buffer("ptr", torch.zeros(num_nodes, dtype=torch.long), persistent=False)
        self.register_buffer("cnt", torch.zeros(num_nodes, dtype=torch.long), persistent=False)
        self.register_buffer("other", torch.zeros(capacity, dtype=torch.long), persistent=False)
        self.register_buffer("t", torch.zeros(capacity, dtype=torch.long), persistent=False)
        self.register_buffer("msg", torch.zeros(capacity, raw_msg_dim), persistent=False)
        self._size = 0  # arena rows in use (live and garbage)

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
        r"""Number of pending (live) messages."""
        return int(self.cnt.sum())

    def clear(self):
        r"""Forgets all pending messages (O(1) Python work; keeps capacity)."""
        self.cnt.zero_()
        self.ptr.zero_()
        self._size = 0

    # --------------------------------------------------------------- queries
    def locate(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""Finds the pending rows of the nodes :obj:`n_id`.

        Returns:
            (rows, owner): arena rows, and for each row the *position* in
            :obj:`n_id` of the node it belongs to. Rows are grouped by position
            in :obj:`n_id`, and within a node follow the order of PyG's
            per-node message lists.
        """
        cnt = self.cnt[n_id]
        total = int(cnt.sum())
        if total == 0:
            empty = n_id.new_empty(0)
            return empty, empty
        ptr = self.ptr[n_id]
        owner = torch.repeat_interleave(
            torch.arange(n_id.numel(), device=n_id.device), cnt, output_size=total
        )
        start = cnt.cumsum(0) - cnt
        rows = torch.arange(total, device=n_id.device) + (ptr - start)[owner]
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
        num = key.numel()
        if num == 0:
            return
        self._reserve(num)
        # The same (not stable) sort PyG uses, so that a node's messages are
        # listed in PyG's order: this decides LastAggregator's tie-breaking.
        key_sorted, perm = key.sort()
        start = self._size
        pos = torch.arange(start, start + num, device=key.device)
        self.other[start:start + num] = other[perm]
        self.t[start:start + num] = t[perm]
        self.msg[start:start + num] = msg[perm].to(self.msg.dtype)
        self.cnt.index_fill_(0, key_sorted, 0)
        self.cnt.index_add_(0, key_sorted, torch.ones_like(key_sorted))
        self.ptr.scatter_reduce_(0, key_sorted, pos, reduce="amin", include_self=False)
        self._size = start + num

    def _reserve(self, num: int):
        if self._size + num <= self.capacity:
            return
        self.compact()
        need = self._size + num
        if need > self.capacity // 2:
            self._resize(max(2 * need, 2 * self.capacity))

    def _live_rows(self) -> Tensor:
        n_id = torch.arange(self.num_nodes, device=self.cnt.device)
        return self.locate(n_id)[0]

    def compact(self):
        r"""Drops garbage rows from the arena (keeps capacity)."""
        rows = self._live_rows()
        num = rows.numel()
        self.other[:num] = self.other[rows]
        self.t[:num] = self.t[rows]
        self.msg[:num] = self.msg[rows]
        self.ptr.copy_(self.cnt.cumsum(0) - self.cnt)
        self._size = num

    def _resize(self, capacity: int):
        def grow(buf: Tensor) -> Tensor:
            out = buf.new_zeros((capacity,) + tuple(buf.shape[1:]))
            out[: self._size] = buf[: self._size]
            return out

        self.other = grow(self.other)
        self.t = grow(self.t)
        self.msg = grow(self.msg)

    # ---------------------------------------------------------- persistence
    def get_extra_state(self) -> dict[str, Any]:
        rows = self._live_rows()
        return {
            "version": 1,
            "cnt": self.cnt.clone(),
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
                f"MessageStore: checkpoint holds {cnt.numel()} nodes, this store {self.num_nodes}"
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
        self.other[:num] = state["other"].to(device)
        self.t[:num] = state["t"].to(device)
        self.msg[:num] = msg.to(device, self.msg.dtype)
        self.cnt.copy_(cnt)
        self.ptr.copy_(self.cnt.cumsum(0) - self.cnt)
        self._size = num

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # A checkpoint of PyG's TGNMemory has no message store (PyG keeps it in
        # a dict outside the state_dict). Loading one leaves the store as it is,
        # exactly as loading it into PyG's TGNMemory would.
        if prefix + "_extra_state" not in state_dict:
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f"num_nodes={self.num_nodes}, raw_msg_dim={self.raw_msg_dim}, "
                f"capacity={self.capacity}")
