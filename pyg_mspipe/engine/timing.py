r"""Per-phase wall-clock timing for benchmarks and profiling."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch

from pyg_mspipe import _cuda

__all__ = ["PhaseTimer"]


class PhaseTimer:
    r"""Accumulates wall-clock seconds per named phase.

    Args:
        device (torch.device, optional): A CUDA device is synchronised at
            every phase boundary, so GPU work is charged to its phase.
            (default: :obj:`None`)
    """

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else None
        self.seconds: dict[str, float] = defaultdict(float)

    def _sync(self):
        if self.device is not None:
            _cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, phase: str):
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[phase] += time.perf_counter() - start

    def total(self) -> float:
        r"""Sum over all phases."""
        return sum(self.seconds.values())


class _NullTimer:
    @contextmanager
    def __call__(self, phase: str):
        yield


NULL_TIMER = _NullTimer()


def timed_batches(loader, device, timer=NULL_TIMER):
    r"""The batches of :obj:`loader` on :obj:`device`, timed as :obj:`"load"`."""
    it = iter(loader)
    while True:
        with timer("load"):
            batch = next(it, None)
            if batch is None:
                return
            batch = batch.to(device)
        yield batch
