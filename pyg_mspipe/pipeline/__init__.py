r"""The MSPipe pipeline: staleness-bounded memory fetch, in-order write-back,
online scheduler, staleness mitigation and correction, per-iteration statistics."""
from pyg_mspipe.pipeline.correction import (
    StalenessCorrection,
    changed_rows,
    refresh_inputs,
)
from pyg_mspipe.pipeline.memory_pipeline import (
    FetchRequest,
    MemoryPipeline,
    PipelineError,
)
from pyg_mspipe.pipeline.mitigation import StalenessMitigation, similar_nodes
from pyg_mspipe.pipeline.scheduler import StalenessScheduler
from pyg_mspipe.pipeline.stats import STAGES, IterationRecord, PipelineStats

__all__ = [
    "MemoryPipeline",
    "FetchRequest",
    "PipelineError",
    "StalenessMitigation",
    "similar_nodes",
    "StalenessCorrection",
    "changed_rows",
    "refresh_inputs",
    "StalenessScheduler",
    "PipelineStats",
    "IterationRecord",
    "STAGES",
]
