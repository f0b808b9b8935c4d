r"""The SNAP CollegeMsg stream, bundled with the package."""
from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.datasets._features import edge_features

__all__ = ["load_college_msg"]


def load_college_msg(msg_dim: int = 16, features: str = "random",
                     seed: int = 0) -> TemporalData:
    r"""Loads SNAP's CollegeMsg (also called UCI) message stream: 59,835
    private messages between 1,899 students of UC Irvine (Panzarasa, Opsahl,
    Carley 2009), bundled with the package (340 KB).

    Node ids are shifted to :obj:`0..1898` and timestamps to start at
    :obj:`0` (seconds). The dataset has no edge features: :obj:`msg` holds
    seeded random (or zero) features.

    Args:
        msg_dim (int, optional): Edge feature size. (default: :obj:`16`)
        features (str, optional): :obj:`"random"` (seeded standard normals)
            or :obj:`"zeros"`. (default: :obj:`"random"`)
        seed (int, optional): Seed of the random features. (default: :obj:`0`)
    """
    ref = resources.files("pyg_mspipe.datasets") / "data" / "CollegeMsg.txt.gz"
    with ref.open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, dtype=np.int64, ndmin=2)
    src = torch.from_numpy(table[:, 0] - 1)
    dst = torch.from_numpy(table[:, 1] - 1)
    t = torch.from_numpy(table[:, 2] - table[0, 2])
    msg = edge_features(src.numel(), msg_dim, features, seed)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)
