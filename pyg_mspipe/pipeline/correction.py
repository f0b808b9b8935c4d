r"""Refresh of stale memory reads: the rows of a fetch whose write-backs
completed after it, gathered again from the committed state."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState

__all__ = ["StalenessCorrection"]


def changed_rows(state: MemoryState, n_id: Tensor, clock: int, kept_only: bool) -> Tensor:
    r"""Positions in :obj:`n_id` whose update inputs changed in :obj:`state`
    since its clock was :obj:`clock`: the node's own state (memory, last
    update, pending messages), or the memory of the other endpoint of one of
    its pending messages (by :attr:`MemoryState.version`).

    Args:
        state (MemoryState): The state.
        n_id (torch.Tensor): Nodes, on the state's device.
        clock (int): The state's clock when the rows were gathered.
        kept_only (bool): Only the message each node keeps is read
            (:func:`~pyg_mspipe.nn._update.keeps_one_message`).
    """
    owner, partner = update.message_partners(state, n_id, kept_only)
    return state.changed(n_id, clock, owner, partner).nonzero().view(-1)


def refresh_inputs(state: MemoryState, inputs, n_id: Tensor, clock: int,
                   kept_only: bool) -> tuple[object, int]:
    r"""The gathered :obj:`inputs` of :obj:`n_id` (read at clock
    :obj:`clock`) made current: the rows :func:`changed_rows` finds are
    gathered again from :obj:`state` (:func:`~pyg_mspipe.nn._update.gather`),
    the others kept. The result equals a fresh
    :func:`~pyg_mspipe.nn._update.gather` of :obj:`n_id`. Returns the inputs
    (on the device of :obj:`inputs`) and the number of rows gathered again.

    With :class:`~pyg_mspipe.nn._update.KeptInputs` only the changed rows are
    read; :class:`~pyg_mspipe.nn._update.MessageInputs` (a variable number of
    messages per node) are gathered again whole if any row changed.

    Args:
        state (MemoryState): The committed state.
        inputs (KeptInputs or MessageInputs): The rows gathered earlier.
        n_id (torch.Tensor): Their nodes, on the state's device.
        clock (int): The state's clock when :obj:`inputs` were gathered.
        kept_only (bool): Whether :obj:`inputs` are
            :class:`~pyg_mspipe.nn._update.KeptInputs`.
    """
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
    fetch (cheap version checks, :func:`refresh_inputs`) are read again, so
    a read is only as stale as the write-backs not committed at use time.
    It changes only what training reads, never the state ("no update lost";
    with frozen parameters the memory after an epoch still equals the
    sequential run's).

    * :obj:`"online"` schedule: on the training thread, inside
      :obj:`memory(n_id)`, to whatever is committed at that moment. It waits
      for nothing: if the worker is in the middle of a stage (it holds the
      memory state), the fetch is used as it is.
    * :obj:`"fixed"` schedule (deterministic, exact resume): the worker
      refreshes the fetch of iteration :math:`i` right after it commits the
      write-back of :math:`i - \text{lag} - 1`, and :obj:`memory(n_id)` waits
      for that refresh. The read is then exactly :math:`\min(i, \text{lag})`
      iterations stale, the same numbers as a fixed schedule with bound
      :obj:`lag`, and training waits for the same write-back (a bound of
      :math:`s` keeps only the full fetch, not the refresh, off the training
      thread's path). A :obj:`lag` above the bound acts as the bound.

    The realised staleness after the refresh is in the pipeline's stats
    (:attr:`IterationRecord.refreshed_staleness`, :meth:`PipelineStats.summary`).

    Args:
        lag (int, optional): Fixed schedule: the write-backs a read may still
            miss after its refresh. (default: :obj:`0`)
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
