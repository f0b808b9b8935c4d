r"""Timing two or more training loops against each other in one process,
interleaved batch by batch (so that a shared machine's slow and fast phases
hit them alike)."""
from __future__ import annotations

import time
from collections.abc import Iterator

__all__ = ["interleaved_epoch"]


def interleaved_epoch(steps: dict[str, Iterator]) -> dict[str, float]:
    r"""Advances the step generators (e.g. of
    :func:`~pyg_mspipe.engine.training.train_steps`) one step each in turn,
    flipping which goes first every step, until all are exhausted; returns
    each one's summed seconds inside its steps.

    Args:
        steps (dict): Name to a generator of training steps.
    """
    steps = dict(steps)
    seconds = dict.fromkeys(steps, 0.0)
    names, i = list(steps), 0
    while steps:
        for name in (names if i % 2 == 0 else names[::-1]):
            if name not in steps:
                continue
            start = time.perf_counter()
            done = next(steps[name], None) is None
            seconds[name] += time.perf_counter() - start
            if done:
                del steps[name]
        i += 1
    return seconds
