r"""Message functions of the memories: PyG's :class:`IdentityMessage`,
DyRep's message (the other endpoint's structural embedding in place of its
memory) and APAN's mail."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["IdentityMessage", "DyRepMessage", "MailMessage"]


class IdentityMessage(torch.nn.Module):
    r"""Concatenates source memory, destination memory, raw message and time
    encoding, like :class:`torch_geometric.nn.models.tgn.IdentityMessage`.

    Args:
        raw_msg_dim (int): Raw message dimensionality.
        memory_dim (int): Memory dimensionality.
        time_dim (int): Time encoding dimensionality.
    """

    def __init__(self, raw_msg_dim: int, memory_dim: int, time_dim: int):
        super().__init__()
        self.out_channels = raw_msg_dim + 2 * memory_dim + time_dim

    def forward(self, z_src: Tensor, z_dst: Tensor, raw_msg: Tensor, t_enc: Tensor) -> Tensor:
        return torch.cat([z_src, z_dst, raw_msg, t_enc], dim=-1)


class DyRepMessage(torch.nn.Module):
    r"""DyRep's message (`"DyRep: Learning Representations over Dynamic
    Graphs" <https://openreview.net/forum?id=HyePrhR5KX>`_, as the TGN
    framework configures it): the other endpoint enters through its
    structural embedding :math:`\mathbf{h}^{struct}` (an attention over its
    neighbourhood, computed when the event happened) rather than its memory,
    :math:`\mathbf{m}_i = [\mathbf{s}_i \| \mathbf{h}^{struct}_j \|
    \mathbf{e}_{ij} \| \phi(t - t_i^-)]`.

    The raw message it receives is :obj:`[e, h_src, h_dst]` (what
    :meth:`~pyg_mspipe.nn.DyRepMemory.update_state` stores); :obj:`side`
    says which endpoint's message it builds.

    Args:
        raw_msg_dim (int): Edge feature size :math:`|\mathbf{e}|`.
        memory_dim (int): Memory size.
        embedding_dim (int): Structural embedding size.
        time_dim (int): Time encoding size.
        side (str, optional): :obj:`"src"` (the message of the source: the
            destination's embedding) or :obj:`"dst"`. (default: :obj:`"src"`)
    """

    def __init__(self, raw_msg_dim: int, memory_dim: int, embedding_dim: int, time_dim: int,
                 side: str = "src"):
        super().__init__()
        if side not in ("src", "dst"):
            raise ValueError(f"'side' must be 'src' or 'dst' (got {side!r})")
        self.raw_msg_dim = raw_msg_dim
        self.embedding_dim = embedding_dim
        self.side = side
        self.out_channels = memory_dim + embedding_dim + raw_msg_dim + time_dim

    def forward(self, z_self: Tensor, z_other: Tensor, raw_msg: Tensor, t_enc: Tensor) -> Tensor:
        m, e = self.raw_msg_dim, self.embedding_dim
        lo = m + e if self.side == "src" else m  # the other endpoint's embedding
        return torch.cat([z_self, raw_msg[:, lo:lo + e], raw_msg[:, :m], t_enc], dim=-1)

    def extra_repr(self) -> str:
        return f"side={self.side!r}"


class MailMessage(torch.nn.Module):
    r"""APAN's mail (`"APAN: Asynchronous Propagation Attention Network for
    Real-time Temporal Graph Embedding" <https://arxiv.org/abs/2011.11545>`_,
    as TGL builds it): the updated memories of both endpoints and the edge
    features, :math:`\mathbf{m} = [\mathbf{s}_i \| \mathbf{s}_j \|
    \mathbf{e}_{ij}]` (the time enters in the updater).

    Args:
        raw_msg_dim (int): Edge feature size.
        memory_dim (int): Memory size.
    """

    def __init__(self, raw_msg_dim: int, memory_dim: int):
        super().__init__()
        self.out_channels = 2 * memory_dim + raw_msg_dim

    def forward(self, z_self: Tensor, z_other: Tensor, raw_msg: Tensor) -> Tensor:
        return torch.cat([z_self, z_other, raw_msg], dim=-1)
