r"""The error the MSPipe pipeline raises."""

__all__ = ["PipelineError"]


class PipelineError(RuntimeError):
    r"""Raised when the pipeline cannot go on (a stage failed earlier)."""
