r"""Batches to the training device: pinned host memory, a side stream, and
an event the consumer waits on."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe import _cuda


class DeviceTransfer:
    r"""Copies tensors to :obj:`device`: on CUDA from pinned host memory on
    a side stream, :meth:`done` recording the event a consumer waits on;
    elsewhere plain copies, :meth:`done` :obj:`None`.

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
