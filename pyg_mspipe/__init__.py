r"""pyg-mspipe: fast, pipelined memory-based temporal GNN training for PyG."""
from pyg_mspipe.checkpoint import load_checkpoint, save_checkpoint
from pyg_mspipe.loader import TemporalDataLoader
from pyg_mspipe.nn import (
    APANMemory,
    DyRepMemory,
    IdentityMessage,
    JODIEMemory,
    LastAggregator,
    LastNeighborLoader,
    MeanAggregator,
    TGNMemory,
    TimeEncoder,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "TGNMemory",
    "JODIEMemory",
    "DyRepMemory",
    "APANMemory",
    "TemporalDataLoader",
    "LastNeighborLoader",
    "IdentityMessage",
    "LastAggregator",
    "MeanAggregator",
    "TimeEncoder",
    "save_checkpoint",
    "load_checkpoint",
    "__version__",
]
