r"""Per-event most-recent-neighbour sampling over a fixed event stream."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe._validation import check_index, check_positive_int

__all__ = ["RecentNeighborSampler", "RecentNeighbors"]


class RecentNeighbors(NamedTuple):
    r"""What :meth:`RecentNeighborSampler.dense` returns: one row per query,
    oldest neighbour first, the most recent in the last column, empty slots
    (fewer than :obj:`size` earlier events) at the front."""
    nbr: Tensor  #: neighbour ids, :obj:`[Q, size]` (0 in empty slots)
    e_id: Tensor  #: event ids, :obj:`[Q, size]` (0 in empty slots)
    t: Tensor  #: event times, :obj:`[Q, size]` (0 in empty slots)
    mask: Tensor  #: :obj:`True` where a slot holds a neighbour, :obj:`[Q, size]`


class RecentNeighborSampler:
    r"""The :obj:`size` most recent neighbours of a node *strictly before a
    given time* in the undirected graph of a fixed event stream, for a batch
    of (node, time) queries (DyGLib's and TGAT's ``recent`` sampling; ties
    in time ordered by event id). Unlike
    :class:`~pyg_mspipe.LastNeighborLoader` it holds no training state, so
    queries may come in any order.

    Args:
        data (TemporalData): The stream (:obj:`src`, :obj:`dst`, :obj:`t`).
        size (int): Neighbours per query.
        num_nodes (int, optional): Number of nodes. (default:
            :obj:`data.num_nodes`)
    """

    def __init__(self, data: TemporalData, size: int, num_nodes: int | None = None):
        check_positive_int("size", size)
        self.size = size
        self.num_nodes = int(data.num_nodes if num_nodes is None else num_nodes)
        src, dst, t = data.src, data.dst, data.t
        check_index("data.src", src, self.num_nodes)
        check_index("data.dst", dst, self.num_nodes)
        num_events = src.numel()
        node = torch.cat([src, dst])
        e_id = torch.arange(num_events, device=src.device).repeat(2)
        # both directions of each event, sorted stably by (node, time)
        order = torch.argsort(e_id, stable=True)
        self.times = torch.unique(t)  # sorted distinct timestamps
        self._stride = self.times.numel() + 1
        key = node[order] * self._stride + torch.searchsorted(self.times, t.repeat(2)[order])
        perm = order[torch.argsort(key, stable=True)]
        self.key = key[torch.argsort(key, stable=True)]
        self.nbr = torch.cat([dst, src])[perm]
        self.e_id = e_id[perm]
        self.t = t.repeat(2)[perm]

    def _check_queries(self, node: Tensor, t: Tensor):
        check_index("node", node, self.num_nodes)
        if not isinstance(t, Tensor) or t.shape != node.shape:
            raise ValueError(f"'t' must be a tensor of the shape of 'node' {tuple(node.shape)} "
                             f"(got {tuple(t.shape) if isinstance(t, Tensor) else type(t)})")

    def dense(self, node: Tensor, t: Tensor) -> RecentNeighbors:
        r"""The most recent neighbours of :obj:`node[i]` before :obj:`t[i]`,
        as :obj:`[Q, size]` tensors (:class:`RecentNeighbors`).

        Args:
            node (torch.Tensor): Query nodes, :obj:`[Q]`.
            t (torch.Tensor): Query times, :obj:`[Q]`.
        """
        self._check_queries(node, t)
        key = self.key
        start = torch.searchsorted(key, node * self._stride)
        end = torch.searchsorted(key, node * self._stride
                                 + torch.searchsorted(self.times,
                                                      t.to(self.times.dtype).contiguous()))
        pos = end.unsqueeze(-1) - self.size + torch.arange(self.size, device=key.device)
        mask = pos >= start.unsqueeze(-1)
        pos = torch.where(mask, pos, torch.zeros_like(pos))
        zero = torch.zeros((), dtype=self.nbr.dtype, device=key.device)
        return RecentNeighbors(torch.where(mask, self.nbr[pos], zero),
                               torch.where(mask, self.e_id[pos], zero),
                               torch.where(mask, self.t[pos], torch.zeros_like(self.t[pos])),
                               mask)

    def __call__(self, node: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""The same sample as :obj:`(n_id, edge_index, e_id)`, like
        :class:`~pyg_mspipe.LastNeighborLoader`'s except that
        :obj:`edge_index[1]` is the query's position in :obj:`node`.

        Args:
            node (torch.Tensor): Query nodes, :obj:`[Q]`.
            t (torch.Tensor): Query times, :obj:`[Q]`.
        """
        nb = self.dense(node, t)
        query = torch.arange(node.numel(), device=node.device).unsqueeze(-1).expand_as(nb.nbr)
        nbr, query, e_id = nb.nbr[nb.mask], query[nb.mask], nb.e_id[nb.mask]
        n_id, inverse = torch.unique(torch.cat([node, nbr]), return_inverse=True)
        return n_id, torch.stack([inverse[node.numel():], query]), e_id

    @property
    def device(self) -> torch.device:
        r"""Where the index lives."""
        return self.key.device

    def to(self, device, non_blocking: bool = False) -> RecentNeighborSampler:
        r"""Moves the index to :obj:`device` (in place); returns :obj:`self`."""
        for name in ("times", "key", "nbr", "e_id", "t"):
            setattr(self, name, getattr(self, name).to(device, non_blocking=non_blocking))
        return self


def batch_queries(batch) -> tuple[Tensor, Tensor]:
    r"""The (node, time) pairs a link predictor scores in a training batch:
    its sources, destinations and negative destinations (:obj:`neg_dst`,
    :obj:`[B]` or :obj:`[B * K]`), each at its event's time."""
    src, dst, t = batch.src, batch.dst, batch.t
    neg_dst = getattr(batch, "neg_dst", None)
    neg_dst = src.new_empty(0) if neg_dst is None else neg_dst.reshape(-1)
    t_neg = t.repeat_interleave(neg_dst.numel() // max(src.numel(), 1))
    return torch.cat([src, dst, neg_dst]), torch.cat([t, t, t_neg])


def read_nodes(node: Tensor, nb: RecentNeighbors) -> tuple[Tensor, Tensor]:
    r"""The sorted unique nodes an embedding of the queries :obj:`node` over
    their sample :obj:`nb` reads the memory of (the queries and every slot
    of :obj:`nb.nbr`, node :obj:`0` in an empty one), and the position of
    each query, then of each slot, in them."""
    return torch.unique(torch.cat([node, nb.nbr.view(-1)]), return_inverse=True)


#: The batch attributes a :class:`~pyg_mspipe.TemporalDataLoader` given a
#: :class:`RecentNeighborSampler` sets: the sample of :func:`batch_queries`.
PREPARED = ("recent_nbr", "recent_e_id", "recent_t", "recent_mask")


def prepared_sample(batch) -> RecentNeighbors | None:
    r"""The sample of :func:`batch_queries` a loader drew ahead for
    :obj:`batch` (:obj:`None` if it drew none)."""
    if getattr(batch, PREPARED[0], None) is None:
        return None
    return RecentNeighbors(*(getattr(batch, name) for name in PREPARED))
