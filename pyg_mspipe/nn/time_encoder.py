r"""The TGN time encoder (PyG-compatible)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Linear

__all__ = ["TimeEncoder"]


class TimeEncoder(torch.nn.Module):
    r"""Encodes a time difference as :math:`\cos(\mathbf{w} t + \mathbf{b})`,
    like :class:`torch_geometric.nn.models.tgn.TimeEncoder` (same parameter
    names, so checkpoints load either way).

    Args:
        out_channels (int): Size of the encoding.
    """

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        self.lin = Linear(1, out_channels)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module."""
        self.lin.reset_parameters()

    def forward(self, t: Tensor) -> Tensor:
        return self.lin(t.view(-1, 1)).cos()
