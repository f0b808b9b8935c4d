r"""The per-epoch progress bar (tqdm, on stderr)."""
from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["EpochProgress"]


class EpochProgress:
    r"""A tqdm bar over one training epoch's events, on stderr: events per
    second, mean loss so far and, when pipelined, the mean realised
    staleness so far.

    Args:
        epoch (int): The epoch (1-based).
        epochs (int): Number of epochs.
        total (int): Training events in the epoch.
        done (int, optional): Events already trained (a resumed epoch).
            (default: :obj:`0`)
        enabled (bool, optional): Show the bar. (default: :obj:`True`)
    """

    def __init__(self, epoch: int, epochs: int, total: int, done: int = 0,
                 enabled: bool = True):
        self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}/{epochs}", unit="ev",
                        unit_scale=True, file=sys.stderr, disable=not enabled, leave=False,
                        dynamic_ncols=True)
        self.loss_sum = 0.0
        self.events = 0
        self.staleness_sum = 0
        self.fetched = 0

    def step(self, loss: float, num_events: int, staleness: int | None = None):
        r"""One trained batch: its loss, its events and (pipelined) the
        realised staleness of its memory read."""
        self.loss_sum += loss * num_events
        self.events += num_events
        postfix = {"loss": f"{self.loss_sum / self.events:.4f}"}
        if staleness is not None:
            self.staleness_sum += staleness
            self.fetched += 1
            postfix["staleness"] = f"{self.staleness_sum / self.fetched:.2f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(num_events)

    def write(self, message: str):
        r"""Prints :obj:`message` on stderr, on its own line above the bar."""
        tqdm.write(message, file=sys.stderr)

    def close(self):
        r"""Draws the bar's final state (tqdm redraws at most every 0.1 s),
        then removes it."""
        self.bar.refresh()
        self.bar.close()
