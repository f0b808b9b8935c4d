r"""Temporal mini-batches: PyG's batching, background prefetch, device
transfer, and the MSPipe pipeline, composed by :class:`TemporalDataLoader`."""
from pyg_mspipe.loader.batches import EpochPosition, TemporalBatches, validate_data
from pyg_mspipe.loader.epochs import PrefetchEpoch, PreparedBatch, SequentialEpoch
from pyg_mspipe.loader.temporal import TemporalDataLoader, usable_cores
from pyg_mspipe.loader.transfer import DeviceTransfer

__all__ = [
    "TemporalDataLoader",
    "TemporalBatches",
    "EpochPosition",
    "SequentialEpoch",
    "PrefetchEpoch",
    "PreparedBatch",
    "DeviceTransfer",
    "validate_data",
    "usable_cores",
]
