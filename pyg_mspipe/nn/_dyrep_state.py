r"""DyRep's state: TGN's plus the most recent edges of every node."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe import _cuda
from pyg_mspipe.nn._state import MemoryState
from pyg_mspipe.nn.last_neighbor_loader import LastNeighborLoader


class Neighborhood(NamedTuple):
    r"""A sampled temporal neighbourhood: :obj:`n_id` (sorted, unique), the
    edges :obj:`edge_index` (positions in :obj:`n_id`, row 0 the neighbour,
    row 1 the node), their times :obj:`t` and features :obj:`msg`."""
    n_id: Tensor
    edge_index: Tensor
    t: Tensor
    msg: Tensor


class DyRepMessages(NamedTuple):
    r"""A DyRep batch's stored messages (a :meth:`MessageStore.plan`) and
    its events, for the table of recent edges."""
    store: tuple
    src: Tensor
    dst: Tensor
    t: Tensor
    msg: Tensor


class RecentEdges:
    r"""The :obj:`size` most recent edges of every node: a
    :class:`~pyg_mspipe.LastNeighborLoader` with each slot's time and
    features.

    Args:
        num_nodes (int): Number of nodes.
        size (int): Edges kept per node.
        msg_dim (int): Edge feature size.
    """

    def __init__(self, num_nodes: int, size: int, msg_dim: int):
        self.loader = LastNeighborLoader(num_nodes, size, validate=False)
        self.t = torch.zeros(num_nodes, size, dtype=torch.long)
        self.msg = torch.zeros(num_nodes, size, msg_dim)

    @property
    def device(self) -> torch.device:
        r"""Where the table lives."""
        return self.t.device

    def sample(self, n_id: Tensor) -> Neighborhood:
        r"""The recent edges of :obj:`n_id` (on the table's device)."""
        sample, valid = self.loader._sample(n_id)
        t = self.t.index_select(0, n_id).view(-1).index_select(0, valid)
        msg = self.msg.index_select(0, n_id).view(-1, self.msg.size(-1)).index_select(0, valid)
        return Neighborhood(sample.n_id, sample.edge_index, t, msg)

    def insert(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor):
        r"""Inserts the events in both directions (on the table's device)."""
        num = src.numel()
        if num == 0:
            return
        loader = self.loader
        first = loader.cur_e_id
        ends = torch.cat([src, dst]).unique()  # the rows the insert rewrites
        old_e_id = loader.e_id.index_select(0, ends)
        old_t, old_msg = self.t.index_select(0, ends), self.msg.index_select(0, ends)
        new_e_id = loader._insert_delta(src, dst).e_id
        # a slot holds a new event (id >= first) or an old edge, found by
        # binary search in the old row (sorted by decreasing event id)
        new = new_e_id >= first
        event = (new_e_id - first).clamp_(0, num - 1)
        pos = torch.searchsorted(old_e_id.neg(), new_e_id.neg()).clamp_(max=old_e_id.size(1) - 1)
        self.t[ends] = torch.where(new, t[event], old_t.gather(1, pos))
        self.msg[ends] = torch.where(new.unsqueeze(-1), msg.to(self.msg.dtype)[event],
                                     old_msg[torch.arange(ends.numel(),
                                                          device=ends.device).unsqueeze(1), pos])

    def clear(self):
        r"""Forgets every edge."""
        self.loader.reset_state()
        self.t.zero_()
        self.msg.zero_()

    def to(self, device: torch.device | None = None, dtype: torch.dtype | None = None):
        r"""Moves the table to :obj:`device`, the features cast to :obj:`dtype`."""
        self.t = self.t.to(device)
        self.msg = self.msg.to(device, dtype)
        self.loader = self.loader._clone(device)
        return self

    def pin_memory(self) -> RecentEdges:
        r"""Pins the times and features (nothing without CUDA)."""
        self.t, self.msg = _cuda.pin(self.t), _cuda.pin(self.msg)
        return self

    def state_dict(self) -> dict:
        r"""Copies of every tensor (for checkpoints)."""
        return {"loader": self.loader.state_dict(), "t": self.t.clone(),
                "msg": self.msg.clone()}

    def check(self, state: dict):
        r"""Raises :class:`RuntimeError` unless :obj:`state` fits this table."""
        ok = isinstance(state, dict) and set(state) == {"loader", "t", "msg"}
        if not ok or state["msg"].shape != self.msg.shape \
                or state["loader"].get("size") != self.loader.size:
            got = tuple(state["msg"].shape) if ok else type(state).__name__
            raise RuntimeError(f"DyRepMemory: checkpoint recent edges {got} do not fit "
                               f"this memory's {tuple(self.msg.shape)}")

    def load_state_dict(self, state: dict):
        r"""Loads what :meth:`state_dict` saved."""
        self.check(state)
        self.loader.load_state_dict(state["loader"])
        self.t.copy_(state["t"])
        self.msg.copy_(state["msg"])


class DyRepState(MemoryState):
    r"""A :class:`MemoryState` with the :class:`RecentEdges` of every node
    (:attr:`recent`), which a batch enters when its messages are stored.

    Args:
        num_nodes (int): Number of nodes.
        memory_dim (int): Memory size.
        store_dim (int): Width of a stored message.
        raw_msg_dim (int): Edge feature size.
        num_neighbors (int): Recent edges kept per node.
        storage (torch.device, optional): As for :class:`MemoryState`.
            (default: :obj:`None`)
    """

    def __init__(self, num_nodes: int, memory_dim: int, store_dim: int, raw_msg_dim: int,
                 num_neighbors: int, storage: torch.device | None = None):
        self.recent = RecentEdges(num_nodes, num_neighbors, raw_msg_dim)
        super().__init__(num_nodes, memory_dim, store_dim, storage)

    def place(self, device: torch.device | None = None, dtype: torch.dtype | None = None):
        super().place(device, dtype)
        self.recent.to(self.device, dtype)

    def _pin(self):
        super()._pin()
        if self.storage is not None:
            self.recent.pin_memory()

    def store_messages(self, messages: DyRepMessages, t_max: Tensor):
        r"""Stores a batch's messages, then its events in :attr:`recent`."""
        super().store_messages(messages.store, t_max)
        device = self.device
        self.recent.insert(*(x.to(device) for x in messages[1:]))

    def reset(self):
        super().reset()
        self.recent.clear()

    def extra_state(self) -> dict:
        return {**super().extra_state(), "recent": self.recent.state_dict()}

    def load(self, memory: Tensor | None = None, last_update: Tensor | None = None,
             extra: dict | None = None):
        recent = None if extra is None else extra.get("recent")
        if recent is not None:  # (checked first: nothing loaded from a bad file)
            self.recent.check(recent)
        super().load(memory, last_update, extra)
        if recent is not None:
            self.recent.load_state_dict(recent)
