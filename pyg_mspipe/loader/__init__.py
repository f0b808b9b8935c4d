r"""Temporal mini-batches: PyG's batching, background prefetch, device
transfer, and the MSPipe pipeline, composed by :class:`TemporalDataLoader`."""
from pyg_mspipe.loader.temporal import TemporalDataLoader

__all__ = ["TemporalDataLoader"]
