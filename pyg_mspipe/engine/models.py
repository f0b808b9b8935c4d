r"""Embedding and link predictor of PyG's ``examples/tgn.py``."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import TransformerConv

__all__ = ["GraphAttentionEmbedding", "LinkPredictor"]


class GraphAttentionEmbedding(torch.nn.Module):
    r"""One :class:`~torch_geometric.nn.conv.TransformerConv` layer over the
    sampled temporal neighbourhood, with relative-time encodings and edge
    features as edge attributes (PyG's ``examples/tgn.py``).

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


class LinkPredictor(torch.nn.Module):
    r"""Scores a (source, destination) pair from their embeddings.

    Args:
        in_channels (int): Embedding size.
    """

    def __init__(self, in_channels: int):
        super().__init__()
        self.lin_src = Linear(in_channels, in_channels)
        self.lin_dst = Linear(in_channels, in_channels)
        self.lin_final = Linear(in_channels, 1)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module."""
        for lin in (self.lin_src, self.lin_dst, self.lin_final):
            lin.reset_parameters()

    def forward(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        h = self.lin_src(z_src) + self.lin_dst(z_dst)
        return self.lin_final(h.relu())
