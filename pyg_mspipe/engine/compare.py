r"""Timing training loops against each other, interleaved batch by batch."""
from __future__ import annotations

import time
from collections.abc import Iterator

__all__ = ["interleaved_epoch"]


def interleaved_epoch(steps: dict[str, Iterator]) -> dict[str, float]:
    r"""Advances the step generators (e.g. of
    :func:`~pyg_mspipe.engine.training.train_steps`) one step each in turn,
    alternating which goes first, until all are done; returns each one's
    seconds.

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
