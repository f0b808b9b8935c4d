r"""The MSPipe pipeline's options and records: the staleness correction a
:class:`~pyg_mspipe.TemporalDataLoader` takes, the
per-iteration statistics it keeps, and the error it raises."""
from pyg_mspipe.pipeline.correction import StalenessCorrection
from pyg_mspipe.pipeline.errors import PipelineError
from pyg_mspipe.pipeline.stats import IterationRecord, PipelineStats

__all__ = ["StalenessCorrection", "PipelineStats", "IterationRecord", "PipelineError"]
