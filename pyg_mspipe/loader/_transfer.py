r"""Batches to the training device: pinned host memory, a side stream, and
an event the consumer waits on."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe import _cuda


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
        self.stream = _cuda.new_stream(device)

    def context(self):
        r"""Runs the enclosed work on the side stream (if any)."""
        return _cuda.on_stream(self.stream)

    def move(self, x: Tensor) -> Tensor:
        r""":obj:`x` on the device (call inside :meth:`context`)."""
        return _cuda.move(x, self.device)

    def done(self):
        r"""An event after the work queued so far on the side stream, or
        :obj:`None` without one."""
        return _cuda.record_event(self.stream)
