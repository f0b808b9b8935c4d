r"""Most-recent-neighbour sampling, a drop-in for PyG's ``LastNeighborLoader``."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe._validation import check_index, check_positive_int

__all__ = ["LastNeighborLoader"]


class NeighborSample(NamedTuple):
    r"""What :meth:`LastNeighborLoader.__call__` returns."""
    n_id: Tensor  #: sorted unique ids of the centre nodes and their neighbours
    edge_index: Tensor  #: edges neighbour -> centre, in local ids
    e_id: Tensor  #: the event id of each edge


class InsertDelta(NamedTuple):
    r"""The rows a :meth:`LastNeighborLoader.insert` changed."""
    n_id: Tensor  #: the nodes whose neighbourhood changed
    e_id: Tensor  #: their new event ids, :obj:`[n, size]`
    neighbors: Tensor  #: their new neighbours, :obj:`[n, size]`


class PreparedSample(NamedTuple):
    r"""A batch's sample and insert, computed ahead on a copy of the loader."""
    n_id: Tensor  #: the nodes the sample is for
    token: tuple  #: :meth:`LastNeighborLoader._state_token` it was sampled at
    sample: NeighborSample
    src: Tensor  #: the batch's events (whose insert :obj:`delta` is)
    dst: Tensor
    delta: InsertDelta | None


def _same(a: Tensor, b: Tensor) -> bool:
    if a is b:
        return True
    return a.shape == b.shape and torch.equal(a.to(b.device), b)


class LastNeighborLoader:
    r"""Keeps, for every node, its :obj:`size` most recent neighbours in an
    ever-growing undirected temporal graph, and samples them for a set of
    nodes: a drop-in for
    :class:`torch_geometric.nn.models.tgn.LastNeighborLoader` (same
    constructor, methods and attributes). A node receiving more than
    :obj:`size` events in one :meth:`insert` keeps the *most recent* ones
    (PyG: arbitrary ones; see :doc:`pyg_differences`). A
    :class:`~pyg_mspipe.TemporalDataLoader` given this loader samples each
    batch ahead of time; calls for other nodes or events are computed on
    the spot.

    Args:
        num_nodes (int): Number of nodes.
        size (int): Number of most recent neighbours kept per node.
        device (torch.device, optional): Device of the state.
            (default: :obj:`None`)
        validate (bool, optional): Check node ids and shapes. (default:
            :obj:`True`)
    """

    def __init__(self, num_nodes: int, size: int, device=None, *, validate: bool = True):
        check_positive_int("num_nodes", num_nodes)
        check_positive_int("size", size)
        self.num_nodes = num_nodes
        self.size = size
        self.validate = validate
        # unused slots (e_id -1) hold 0: deterministic checkpoints
        self.neighbors = torch.zeros((num_nodes, size), dtype=torch.long, device=device)
        self.e_id = torch.empty((num_nodes, size), dtype=torch.long, device=device)
        self._assoc = torch.empty(num_nodes, dtype=torch.long, device=device)
        self._prepared: PreparedSample | None = None
        self._resets = 0  # bumped by reset_state / load_state_dict
        self._foreign = 0  # inserts of anything but the prepared batch
        self.reset_state()

    def _state_token(self) -> tuple[int, int, int]:
        r"""Changes with every reset, load and insert."""
        return (self._resets, self._foreign, self.cur_e_id)

    @property
    def device(self) -> torch.device:
        r"""The device of the state."""
        return self.e_id.device

    # ----------------------------------------------------------------- state
    def reset_state(self):
        r"""Forgets all interactions."""
        self.cur_e_id = 0
        self.e_id.fill_(-1)
        self.neighbors.zero_()
        self._prepared = None
        self._resets += 1

    def state_dict(self) -> dict:
        r"""The full state (for checkpoints)."""
        return {"neighbors": self.neighbors.clone(), "e_id": self.e_id.clone(),
                "cur_e_id": self.cur_e_id, "size": self.size}

    def load_state_dict(self, state: dict):
        r"""Restores a state saved by :meth:`state_dict`."""
        if state["size"] != self.size or state["e_id"].shape != self.e_id.shape:
            raise ValueError(
                f"checkpoint has size={state['size']} and {state['e_id'].size(0)} nodes, this "
                f"loader size={self.size} and {self.num_nodes} nodes")
        self.neighbors.copy_(state["neighbors"])
        self.e_id.copy_(state["e_id"])
        self.cur_e_id = int(state["cur_e_id"])
        self._prepared = None
        self._resets += 1

    def _clone(self, device=None) -> LastNeighborLoader:
        r"""An independent copy, on :obj:`device` (default: this one's)."""
        other = type(self).__new__(type(self))
        other.num_nodes, other.size, other.validate = self.num_nodes, self.size, self.validate
        other.neighbors = self.neighbors.to(device, copy=True)
        other.e_id = self.e_id.to(device, copy=True)
        other._assoc = torch.empty_like(self._assoc, device=other.e_id.device)
        other.cur_e_id = self.cur_e_id
        other._prepared = None
        other._resets, other._foreign = self._resets, self._foreign
        return other

    # -------------------------------------------------------------- sampling
    def __call__(self, n_id: Tensor) -> NeighborSample:
        r"""Samples the most recent neighbours of :obj:`n_id`.

        Returns:
            NeighborSample: :obj:`(n_id, edge_index, e_id)`, the sorted unique
            ids of :obj:`n_id` and their neighbours, edges
            :obj:`neighbour -> centre` in local ids, and the event id of each
            edge.
        """
        prepared = self._take_prepared(n_id)
        if prepared is not None:
            return prepared
        if self.validate:
            check_index("n_id", n_id, self.num_nodes, device=self.device)
        return self.sample(n_id)

    def sample(self, n_id: Tensor, assoc: Tensor | None = None) -> NeighborSample:
        r"""Samples from the current state (never uses a prepared result)."""
        return self._sample(n_id, assoc)[0]

    def _sample(self, n_id: Tensor, assoc: Tensor | None = None) -> tuple[NeighborSample,
                                                                          Tensor]:
        # sample(), and the flat slot positions (row-major in n_id's rows)
        # of its edges, for tables kept beside this one's slots
        assoc = self._assoc if assoc is None else assoc
        size = self.size
        e_id = self.e_id.index_select(0, n_id).view(-1)
        # Valid slots in row-major order: PyG's mask order.
        valid = (e_id >= 0).nonzero().view(-1)
        e_id = e_id.index_select(0, valid)
        neighbors = self.neighbors.index_select(0, n_id).view(-1).index_select(0, valid)
        nodes = n_id.index_select(0, torch.div(valid, size, rounding_mode="floor"))
        n_id = torch.cat([n_id, neighbors]).unique()
        assoc[n_id] = torch.arange(n_id.size(0), device=n_id.device)
        neighbors, nodes = assoc.index_select(0, neighbors), assoc.index_select(0, nodes)
        return NeighborSample(n_id, torch.stack([neighbors, nodes]), e_id), valid

    def insert(self, src: Tensor, dst: Tensor):
        r"""Inserts the interactions :obj:`(src, dst)` (both directions), with
        event ids :obj:`cur_e_id, cur_e_id + 1, ...`."""
        if self.validate:
            check_index("src", src, self.num_nodes, device=self.device)
            check_index("dst", dst, self.num_nodes, device=self.device)
            if src.numel() != dst.numel():
                raise ValueError(f"'src' and 'dst' must have the same length "
                                 f"(got {src.numel()} and {dst.numel()})")
        prepared = self._prepared
        if prepared is None or not (_same(prepared.src, src) and _same(prepared.dst, dst)):
            self._foreign += 1  # prepared samples no longer apply
            self._insert_delta(src, dst)
            return
        delta = prepared.delta
        if delta is not None and prepared.token == self._state_token():
            # The background worker computed this very update from this very
            # state: write its rows instead of recomputing them.
            n_id, e_id, neighbors = (x.to(self.device) for x in delta)
            self.e_id[n_id] = e_id
            self.neighbors[n_id] = neighbors
            self.cur_e_id += src.numel()
        else:
            self._insert_delta(src, dst)

    def _insert_delta(self, src: Tensor, dst: Tensor) -> InsertDelta | None:
        r""":meth:`insert` without validation or prepared results; returns
        the rows it changed (:obj:`None` for no events)."""
        num = src.numel()
        if num == 0:
            return None
        size = self.size
        neighbors = torch.cat([src, dst])
        nodes = torch.cat([dst, src])
        event = torch.arange(num, device=src.device).repeat(2)  # position in the batch
        e_id = event + self.cur_e_id
        self.cur_e_id += num

        # group by node, newest first: one sort on a combined key
        order = torch.argsort(nodes * num + (num - 1 - event))
        nodes = nodes.index_select(0, order)
        neighbors = neighbors.index_select(0, order)
        e_id = e_id.index_select(0, order)
        # Rank from the newest event of each node; only the newest `size` kept.
        rank = torch.arange(nodes.numel(), device=nodes.device) - torch.searchsorted(nodes, nodes)
        if bool(rank.max() >= size):  # some node got more than `size` events
            keep = (rank < size).nonzero().view(-1)
            nodes, neighbors = nodes.index_select(0, keep), neighbors.index_select(0, keep)
            e_id, rank = e_id.index_select(0, keep), rank.index_select(0, keep)

        n_id = nodes.unique_consecutive()
        self._assoc[n_id] = torch.arange(n_id.numel(), device=n_id.device)
        dense_id = self._assoc.index_select(0, nodes) * size + rank
        dense_e_id = e_id.new_full((n_id.numel() * size,), -1)
        dense_e_id[dense_id] = e_id
        dense_neighbors = e_id.new_zeros(n_id.numel() * size)
        dense_neighbors[dense_id] = neighbors

        # Merge with the stored neighbours and keep the `size` newest.
        all_e_id = torch.cat([self.e_id.index_select(0, n_id),
                              dense_e_id.view(-1, size)], dim=-1)
        all_neighbors = torch.cat([self.neighbors.index_select(0, n_id),
                                   dense_neighbors.view(-1, size)], dim=-1)
        top_e_id, perm = all_e_id.topk(size, dim=-1)
        top_neighbors = torch.gather(all_neighbors, 1, perm)
        self.e_id[n_id] = top_e_id
        self.neighbors[n_id] = top_neighbors
        return InsertDelta(n_id, top_e_id, top_neighbors)

    # ------------------------------------------------ prepared (run-ahead)
    def _offer(self, prepared: PreparedSample | None):
        r"""Offers a prepared sample: used only for the same nodes, events
        and state token, so a stale offer is harmless."""
        self._prepared = prepared

    def _take_prepared(self, n_id: Tensor) -> NeighborSample | None:
        prepared = self._prepared
        if prepared is None or prepared.token != self._state_token() \
                or not _same(prepared.n_id, n_id):
            return None
        return NeighborSample(*(x.to(n_id.device) for x in prepared.sample))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_nodes={self.num_nodes}, size={self.size})"
