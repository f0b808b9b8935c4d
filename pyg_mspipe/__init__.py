r"""pyg-mspipe: fast, pipelined memory-based temporal GNN training for PyG."""
from pyg_mspipe.aggregators import LastAggregator, MeanAggregator
from pyg_mspipe.checkpoint import load_checkpoint, save_checkpoint
from pyg_mspipe.loader import TemporalDataLoader
from pyg_mspipe.mailbox import MessageStore
from pyg_mspipe.message import IdentityMessage
from pyg_mspipe.nn import (
    APANMemory,
    DyRepMemory,
    JODIEMemory,
    MemoryState,
    TGNMemory,
    WriteBack,
)
from pyg_mspipe.sampler import LastNeighborLoader
from pyg_mspipe.time_encoder import TimeEncoder

__version__ = "0.1.0.dev0"

__all__ = [
    "TGNMemory",
    "JODIEMemory",
    "DyRepMemory",
    "APANMemory",
    "MemoryState",
    "WriteBack",
    "TemporalDataLoader",
    "LastNeighborLoader",
    "MessageStore",
    "IdentityMessage",
    "LastAggregator",
    "MeanAggregator",
    "TimeEncoder",
    "save_checkpoint",
    "load_checkpoint",
    "__version__",
]
