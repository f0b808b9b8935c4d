r"""Batches to the training device: pinned host memory, a side stream, and
an event the consumer waits on."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe._streams import on_stream

__all__ = ["DeviceTransfer"]


class DeviceTransfer:
    r"""Copies tensors to :obj:`device`. On a CUDA device the copies run on
    a side stream, from pinned host memory (tensors already on a GPU are not
    pinned: only host tensors can be), and :meth:`done` records the event that
    a consumer waits on (:meth:`torch.cuda.Stream.wait_event`) before it uses
    them; on any other device they are plain synchronous copies and
    :meth:`done` is :obj:`None`.

    Args:
        device (torch.device): The target device.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def context(self):
        r"""Runs the enclosed work on the side stream (if any)."""
        return on_stream(self.stream)

    def move(self, x: Tensor) -> Tensor:
        r""":obj:`x` on the device (call inside :meth:`context`)."""
        if x.device == self.device:
            return x
        if self.stream is None:
            return x.to(self.device)
        if x.device.type == "cpu":
            x = x.pin_memory()
        return x.to(self.device, non_blocking=True)

    def done(self):
        r"""An event after the work queued so far on the side stream, or
        :obj:`None` without one."""
        if self.stream is None:
            return None
        event = torch.cuda.Event()
        event.record(self.stream)
        return event
