r"""Seeded edge features for datasets that ship without them."""
from __future__ import annotations

import torch
from torch import Tensor


def edge_features(num_events: int, msg_dim: int, features: str, seed: int) -> Tensor:
    r"""Returns :obj:`[num_events, msg_dim]` features: :obj:`"random"` draws
    standard normals from a generator seeded with :obj:`seed` (reproducible,
    independent of the global RNG), :obj:`"zeros"` gives zeros."""
    if features == "random":
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(num_events, msg_dim, generator=gen)
    if features == "zeros":
        return torch.zeros(num_events, msg_dim)
    raise ValueError(f"'features' must be 'random' or 'zeros' (got {features!r})")
