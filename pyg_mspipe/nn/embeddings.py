r"""Embedding modules: what a memory-based model computes from the memory
for the link predictor."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import TransformerConv

__all__ = ["GraphAttentionEmbedding", "TimeProjectionEmbedding", "IdentityEmbedding"]


class GraphAttentionEmbedding(torch.nn.Module):
    r"""One :class:`~torch_geometric.nn.conv.TransformerConv` layer over the
    sampled temporal neighbourhood, with relative-time encodings and edge
    features as edge attributes (PyG's ``examples/tgn.py``):
    :math:`\mathbf{z}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{ij}
    \mathbf{W}_v [\mathbf{s}_j \| \phi(t_j - t) \| \mathbf{e}_{ij}] +
    \mathbf{W}_r \mathbf{s}_i`.

    Args:
        in_channels (int): Memory size.
        out_channels (int): Embedding size.
        msg_dim (int): Edge feature size.
        time_enc (torch.nn.Module): The time encoder (shared with the memory).
        dropout (float, optional): Attention dropout. (default: :obj:`0.1`)
    """

    def __init__(self, in_channels: int, out_channels: int, msg_dim: int,
                 time_enc: torch.nn.Module, dropout: float = 0.1):
        super().__init__()
        self.time_enc = time_enc
        edge_dim = msg_dim + time_enc.out_channels
        self.conv = TransformerConv(in_channels, out_channels // 2, heads=2,
                                    dropout=dropout, edge_dim=edge_dim)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, last_update: Tensor, edge_index: Tensor, t: Tensor,
                msg: Tensor) -> Tensor:
        rel_t = last_update[edge_index[0]] - t
        rel_t_enc = self.time_enc(rel_t.to(x.dtype))
        edge_attr = torch.cat([rel_t_enc, msg], dim=-1)
        return self.conv(x, edge_index, edge_attr)


class TimeProjectionEmbedding(torch.nn.Module):
    r"""JODIE's projection of a memory into the future
    (`"Predicting Dynamic Embedding Trajectory in Temporal Interaction
    Networks" <https://arxiv.org/abs/1908.01207>`_, Eq. 3):
    :math:`\hat{\mathbf{s}}(t) = (1 + \mathbf{w}\,\Delta) \odot \mathbf{s}`
    with :math:`\Delta = (t - t^-) / (t + 1)`, :math:`t^-` the node's last
    update (TGL's normalisation, see :doc:`models`).

    Args:
        channels (int): Memory size.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.lin = Linear(1, channels)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (JODIE's normal
        initialisation, :math:`\mathcal{N}(0, 1/\sqrt{\text{fan-in}})`)."""
        std = 1.0 / math.sqrt(self.lin.weight.size(1))
        with torch.no_grad():
            self.lin.weight.normal_(0.0, std)
            self.lin.bias.normal_(0.0, std)

    def forward(self, memory: Tensor, last_update: Tensor, t: Tensor) -> Tensor:
        r"""Projects :obj:`memory` :obj:`[n, channels]` of nodes last updated
        at :obj:`last_update` :obj:`[n]` to the times :obj:`t` :obj:`[n]`."""
        delta = (t - last_update).to(memory.dtype) / (t.to(memory.dtype) + 1)
        return memory * (1 + self.lin(delta.unsqueeze(-1)))


class IdentityEmbedding(torch.nn.Module):
    r"""The memory itself as the embedding (DyRep and APAN in the TGN
    framework and TGL: :math:`\mathbf{z}_i = \mathbf{s}_i`)."""

    def reset_parameters(self):
        r"""Nothing to reset (no parameters)."""

    def forward(self, memory: Tensor, *args) -> Tensor:
        return memory
