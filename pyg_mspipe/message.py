r"""Message functions of the TGN memory (PyG-compatible)."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["IdentityMessage"]


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
