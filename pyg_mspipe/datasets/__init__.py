r"""Temporal interaction data: the bundled CollegeMsg, event files of the
common formats (:obj:`FORMATS`), PyG's JODIE datasets, TGB's link-property
datasets and a synthetic stream, all as
:class:`~torch_geometric.data.TemporalData` through :func:`load_dataset`."""
from pyg_mspipe.datasets.college_msg import load_college_msg
from pyg_mspipe.datasets.errors import DataFormatError
from pyg_mspipe.datasets.formats import FORMATS, detect_format, read_events
from pyg_mspipe.datasets.load import bundled_datasets, load_dataset
from pyg_mspipe.datasets.synthetic import synthetic_events
from pyg_mspipe.datasets.tgb import TGBLinkData, load_tgb
from pyg_mspipe.datasets.wikipedia import load_wikipedia

__all__ = [
    "load_dataset",
    "bundled_datasets",
    "FORMATS",
    "DataFormatError",
    "detect_format",
    "read_events",
    "synthetic_events",
    "load_college_msg",
    "load_wikipedia",
    "load_tgb",
    "TGBLinkData",
]
