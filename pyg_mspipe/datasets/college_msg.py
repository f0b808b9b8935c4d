r"""The SNAP CollegeMsg stream, bundled with the package."""
from __future__ import annotations

from importlib import resources

from torch_geometric.data import TemporalData

from pyg_mspipe.datasets._features import edge_features
from pyg_mspipe.datasets.formats import read_events

__all__ = ["load_college_msg"]


def load_college_msg(msg_dim: int = 16, features: str = "random",
                     seed: int = 0) -> TemporalData:
    r"""Loads SNAP's CollegeMsg (also called UCI) message stream: 59,835
    private messages between 1,899 students of UC Irvine (Panzarasa, Opsahl,
    Carley 2009), bundled with the package (340 KB).

    Node ids become :obj:`0..1898`, timestamps start at :obj:`0` (seconds);
    :obj:`msg` holds seeded random (or zero) features.

    Args:
        msg_dim (int, optional): Edge feature size. (default: :obj:`16`)
        features (str, optional): :obj:`"random"` (seeded standard normals)
            or :obj:`"zeros"`. (default: :obj:`"random"`)
        seed (int, optional): Seed of the random features. (default: :obj:`0`)
    """
    ref = resources.files("pyg_mspipe.datasets") / "data" / "CollegeMsg.txt.gz"
    with resources.as_file(ref) as path:
        events = read_events(path, "snap")
    msg = edge_features(events.src.numel(), msg_dim, features, seed)
    return TemporalData(src=events.src, dst=events.dst, t=events.t, msg=msg)
