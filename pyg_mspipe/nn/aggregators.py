r"""Message aggregators of the TGN memory (PyG-compatible)."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe._scatter import scatter_argmax

__all__ = ["LastAggregator", "MeanAggregator"]


class LastAggregator(torch.nn.Module):
    r"""Keeps, per node, the message with the largest timestamp.

    Behaves exactly like :class:`torch_geometric.nn.models.tgn.LastAggregator`
    with :obj:`torch_scatter` installed, whether or not it is installed here:
    ties go to the first message, and nodes without messages get a zero row.
    (PyG's own fallback without :obj:`torch_scatter` gives ties to the last
    message and fills empty rows with an arbitrary message.)
    """

    def forward(self, msg: Tensor, index: Tensor, t: Tensor, dim_size: int) -> Tensor:
        if msg.size(0) == 0:
            # Stay connected to the graph (zero gradients rather than none, as
            # in PyG): optimizers such as Adam still step on zero gradients.
            return msg.new_zeros((dim_size, msg.size(-1))).index_add(0, index, msg)
        argmax = scatter_argmax(t, index, dim_size)
        has_msg = argmax < msg.size(0)
        out = msg[argmax.clamp(max=msg.size(0) - 1)]
        return out * has_msg.unsqueeze(-1).to(out.dtype)


class MeanAggregator(torch.nn.Module):
    r"""Averages the messages of each node (zero rows for nodes without
    messages), like :class:`torch_geometric.nn.models.tgn.MeanAggregator`."""

    def forward(self, msg: Tensor, index: Tensor, t: Tensor, dim_size: int) -> Tensor:
        count = msg.new_zeros(dim_size)
        count.scatter_add_(0, index, msg.new_ones(msg.size(0)))
        count = count.clamp(min=1)
        out = msg.new_zeros((dim_size, msg.size(-1)))
        out.scatter_add_(0, index.view(-1, 1).expand_as(msg), msg)
        return out / count.view(-1, 1)
