r"""CUDA stream helpers shared by the loader and the pipeline (no-ops on
the CPU)."""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor


def on_stream(stream: torch.cuda.Stream | None):
    r""":func:`torch.cuda.stream` context, or nothing for :obj:`None`."""
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


def record_stream(obj: Any, stream):
    r"""Tensors allocated on one stream are used on :obj:`stream` from now
    on: keep the caching allocator from reusing their memory too early.
    Walks tuples, lists and dict values."""
    if isinstance(obj, Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, dict):
        for x in obj.values():
            record_stream(x, stream)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            record_stream(x, stream)
