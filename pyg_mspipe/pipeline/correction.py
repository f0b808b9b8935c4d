r"""Refresh of stale memory reads: the rows of a fetch whose write-backs
completed after it, gathered again from the committed state."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState

__all__ = ["StalenessCorrection"]


def changed_rows(state: MemoryState, n_id: Tensor, clock: int, kept_only: bool) -> Tensor:
    r"""Positions in :obj:`n_id` whose update inputs (own state, or the memory
    of a pending message's other endpoint) changed in :obj:`state` since its
    clock was :obj:`clock`."""
    owner, partner = update.message_partners(state, n_id, kept_only)
    return state.changed(n_id, clock, owner, partner).nonzero().view(-1)


def refresh_inputs(state: MemoryState, inputs, n_id: Tensor, clock: int,
                   kept_only: bool) -> tuple[object, int]:
    r"""The :obj:`inputs` of :obj:`n_id` gathered at clock :obj:`clock`, made
    equal to a fresh :func:`~pyg_mspipe.nn._update.gather`: the rows
    :func:`changed_rows` finds are gathered again (all of them for
    :class:`~pyg_mspipe.nn._update.MessageInputs`). Returns the inputs and
    the number of rows gathered again."""
    if state.clock == clock:
        return inputs, 0
    device = inputs[0].device
    rows = changed_rows(state, n_id, clock, kept_only)
    num = rows.numel()
    if num == 0:
        return inputs, 0
    if not kept_only:
        return update.move_inputs(update.gather(state, n_id, kept_only), device), num
    fresh = update.move_inputs(update.gather(state, n_id.index_select(0, rows), kept_only),
                               device)
    rows = rows.to(device)
    merged = [x.index_copy(0, rows, y) if isinstance(x, Tensor) else x
              for x, y in zip(inputs, fresh)]
    return type(inputs)(*merged), num


class StalenessCorrection:
    r"""Refreshes each memory fetch of the pipeline just before training
    reads it: the fetched rows whose write-backs were committed after the
    fetch are read again, so a read is only as stale as the write-backs not
    committed at use time. It changes only what training reads, never the
    state. With the :obj:`"online"` schedule the refresh runs on the training
    thread and waits for nothing; with the :obj:`"fixed"` schedule every read
    is exactly :math:`\min(i, \text{lag})` iterations stale (see
    :doc:`staleness`).

    Args:
        lag (int, optional): Fixed schedule: the write-backs a read may still
            miss after its refresh; a :obj:`lag` above the staleness bound
            acts as the bound. (default: :obj:`0`)
    """

    def __init__(self, lag: int = 0):
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
            raise ValueError(f"'lag' must be a non-negative int (got {lag!r})")
        self.lag = lag
        self.refreshed = 0  # rows gathered again so far

    def refresh(self, state: MemoryState, inputs, n_id: Tensor, clock: int,
                kept_only: bool):
        r""":func:`refresh_inputs`, counting the rows in :attr:`refreshed`.
        Returns :obj:`(inputs, rows)`."""
        with torch.no_grad():
            inputs, rows = refresh_inputs(state, inputs, n_id, clock, kept_only)
        self.refreshed += rows
        return inputs, rows

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lag={self.lag})"
