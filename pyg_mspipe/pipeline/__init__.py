r"""The MSPipe pipeline's options and records: the staleness correction a
:class:`~pyg_mspipe.TemporalDataLoader` takes, the
per-iteration statistics it keeps, the error it raises, and hooks around
the memory's stages."""
from pyg_mspipe.pipeline.correction import StalenessCorrection
from pyg_mspipe.pipeline.errors import PipelineError
from pyg_mspipe.pipeline.hooks import hook_stages
from pyg_mspipe.pipeline.stats import IterationRecord, PipelineStats

__all__ = ["StalenessCorrection", "PipelineStats", "IterationRecord", "PipelineError",
           "hook_stages"]
