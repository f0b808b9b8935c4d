r"""The JODIE Wikipedia interaction stream, read from a local file."""
from __future__ import annotations

import os
from pathlib import Path

from torch_geometric.data import TemporalData

from pyg_mspipe.datasets._features import edge_features
from pyg_mspipe.datasets.formats import read_events

__all__ = ["load_wikipedia"]

_FILE = "wikipedia_edges.csv.gz"


def load_wikipedia(path: str | os.PathLike | None = None, msg_dim: int = 172,
                   features: str = "random", seed: int = 0) -> TemporalData:
    r"""Loads the JODIE Wikipedia stream (157,474 edits, 9,227 nodes: users
    :obj:`0..8226`, pages :obj:`8227..9226`, numbered as PyG's
    :class:`~torch_geometric.datasets.JODIEDataset` numbers them).

    The file has no edge features: :obj:`msg` holds seeded random (or
    zero) features of the original release's size.

    Args:
        path (str, optional): The :obj:`wikipedia_edges.csv.gz` file (header
            :obj:`u,i,ts,label`). If not given, the file of that name in the
            folder :obj:`$PYG_MSPIPE_DATA`. (default: :obj:`None`)
        msg_dim (int, optional): Edge feature size. (default: :obj:`172`)
        features (str, optional): :obj:`"random"` (seeded standard normals)
            or :obj:`"zeros"`. (default: :obj:`"random"`)
        seed (int, optional): Seed of the random features. (default: :obj:`0`)
    """
    if path is None:
        if not os.environ.get("PYG_MSPIPE_DATA"):
            raise FileNotFoundError(
                f"'{_FILE}': pass its path or set PYG_MSPIPE_DATA to its folder")
        path = Path(os.environ["PYG_MSPIPE_DATA"]) / _FILE
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: '{path}'")
    events = read_events(path, "uits")
    msg = edge_features(events.src.numel(), msg_dim, features, seed)
    data = TemporalData(src=events.src, dst=events.dst, t=events.t, msg=msg)
    if events.y is not None:
        data.y = events.y
    return data
