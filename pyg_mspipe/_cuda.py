r"""Everything CUDA-only, in one place: side streams, events, pinned host
memory, synchronisation and the CUDA random state.

Every function takes :obj:`None` (no stream, no event) or a non-CUDA device
and then does nothing, or makes a plain copy, so that the code calling them
is the same on every device and runs in the CPU test suite.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data.data import BaseData


def new_stream(device: torch.device):
    r"""A side stream on :obj:`device` that starts after the work queued so
    far on its current stream, or :obj:`None` off CUDA."""
    if device.type != "cuda":
        return None
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    return stream


def on_stream(stream):
    r"""Runs the enclosed work on :obj:`stream` (nothing for :obj:`None`)."""
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


def record_event(stream):
    r"""An event after the work queued so far on :obj:`stream` (:obj:`None`
    for :obj:`None`)."""
    if stream is None:
        return None
    event = torch.cuda.Event()
    event.record(stream)
    return event


def current_event(device: torch.device):
    r"""An event after the work queued so far on the current stream of
    :obj:`device`, or :obj:`None` off CUDA."""
    if device.type != "cuda":
        return None
    return record_event(torch.cuda.current_stream(device))


def wait_event(stream, event):
    r""":obj:`stream` (or, for a device, its current stream) waits for
    :obj:`event` (nothing if either is :obj:`None`)."""
    if event is None or stream is None:
        return
    if isinstance(stream, torch.device):
        stream = torch.cuda.current_stream(stream)
    stream.wait_event(event)


def join(device: torch.device, stream):
    r"""The current stream of :obj:`device` waits for the work queued so far
    on :obj:`stream` (nothing for :obj:`None`)."""
    if stream is not None:
        torch.cuda.current_stream(device).wait_stream(stream)


def current_stream(device: torch.device | None):
    r"""The current stream of :obj:`device`, or :obj:`None` off CUDA."""
    if device is None or device.type != "cuda":
        return None
    return torch.cuda.current_stream(device)


def record_stream(obj: Any, stream):
    r"""Tensors allocated on one stream are used on :obj:`stream` from now
    on: keeps the caching allocator from reusing their memory too early.
    Walks tuples, lists, dict values and PyG data objects; nothing for
    :obj:`None`."""
    if stream is None:
        return
    if isinstance(obj, Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, BaseData):
        record_stream(obj.to_dict(), stream)
    elif isinstance(obj, dict):
        for x in obj.values():
            record_stream(x, stream)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            record_stream(x, stream)


def pin(x: Tensor) -> Tensor:
    r""":obj:`x` in pinned host memory where CUDA is available (host tensors
    only), else :obj:`x` itself."""
    if x.device.type != "cpu" or not torch.cuda.is_available() or x.is_pinned():
        return x
    return x.pin_memory()


def move(x: Tensor, device: torch.device) -> Tensor:
    r""":obj:`x` on :obj:`device`: host to GPU through pinned memory without
    blocking (order it with the stream it runs on), anything else a plain
    copy, and no copy at all on the same device."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def set_device(device: torch.device):
    r"""Makes :obj:`device` the current CUDA device (nothing off CUDA)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def synchronize(device: torch.device):
    r"""Waits for the work queued on :obj:`device` (nothing off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def process_group_backend() -> str:
    r"""The :mod:`torch.distributed` backend for this machine: NCCL where
    CUDA is available, else gloo."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def rng_devices() -> list[int]:
    r"""The CUDA devices whose random state :func:`rng_state` holds: every
    one if CUDA was used, else none."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def rng_state() -> list | None:
    r"""The CUDA random state of every device, if CUDA was used."""
    return [torch.cuda.get_rng_state(i) for i in rng_devices()] or None


def set_rng_state(state: list | None):
    r"""Restores :func:`rng_state` (nothing for :obj:`None` or without CUDA)."""
    if state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state)
