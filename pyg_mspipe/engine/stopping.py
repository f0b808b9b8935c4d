r"""Early stopping on a validation score (DyGLib's ``utils/EarlyStopping.py``)."""
from __future__ import annotations

import copy
import math

__all__ = ["EarlyStopping", "improves"]


def improves(value: float, best: float | None) -> bool:
    r"""Whether :obj:`value` beats :obj:`best`: higher, ties to the first;
    NaN never improves, anything improves on :obj:`None` or NaN."""
    if math.isnan(value):
        return best is None
    return best is None or math.isnan(best) or value > best


class EarlyStopping:
    r"""Stops training after :obj:`patience` epochs without a better
    validation score (:func:`improves`), keeping a copy of the best epoch's
    state taken right after its validation, as DyGLib does. Call
    :meth:`step` after each validation and :meth:`restore` before the final
    test.

    Args:
        patience (int): Epochs without improvement before stopping.
    """

    def __init__(self, patience: int):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"'patience' must be a positive integer (got {patience!r})")
        self.patience = patience
        self.best_epoch: int | None = None
        self.best_score: float | None = None
        self.best_state: dict | None = None

    def step(self, epoch: int, score: float, objects: dict) -> bool:
        r"""Records an epoch's validation score, keeping the state of
        :obj:`objects` (name to anything with :meth:`state_dict`) if it is
        the best so far; returns whether training stops.

        Args:
            epoch (int): The epoch (1-based).
            score (float): Its validation score (higher is better).
            objects (dict): The objects whose state is kept, by name.
        """
        if improves(float(score), self.best_score):
            self.best_epoch, self.best_score = epoch, float(score)
            self.best_state = {name: copy.deepcopy(obj.state_dict())
                               for name, obj in objects.items()}
        return self.stops_after(epoch)

    def stops_after(self, epoch: int) -> bool:
        r"""Whether epoch :obj:`epoch` is the :obj:`patience`-th without a
        better score."""
        return self.best_epoch is not None and epoch - self.best_epoch >= self.patience

    def restore(self, objects: dict):
        r"""Loads the best epoch's state into :obj:`objects` (same names)."""
        if self.best_state is None:
            raise RuntimeError("no epoch has been recorded: nothing to restore")
        missing = sorted(set(objects) - set(self.best_state))
        if missing:
            raise KeyError(f"the kept state has nothing for {missing} "
                           f"(it has {sorted(self.best_state)})")
        for name, obj in objects.items():
            obj.load_state_dict(copy.deepcopy(self.best_state[name]))

    def state_dict(self) -> dict:
        r"""Everything, the kept state included."""
        return {"patience": self.patience, "best_epoch": self.best_epoch,
                "best_score": self.best_score, "best_state": self.best_state}

    def load_state_dict(self, state: dict):
        r"""Restores what :meth:`state_dict` saved."""
        if state["patience"] != self.patience:
            raise ValueError(f"the state was saved with patience {state['patience']}, this "
                             f"one has {self.patience}")
        self.best_epoch = state["best_epoch"]
        self.best_score = state["best_score"]
        self.best_state = state["best_state"]
