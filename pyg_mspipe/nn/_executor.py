r"""The seam between a memory and how its reads and writes run (see
``docs/architecture.md``, "The seam")."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe._validation import check_order
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState, WriteBack
from pyg_mspipe.nn._update import EventPlan


class Rows(NamedTuple):
    r"""Rows :meth:`forward` computed, with the clock and versions they
    were computed from."""
    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    clock: int
    versions: tuple

    def still_valid(self, modules: torch.nn.Module) -> bool:
        r"""Whether :obj:`modules` and the returned tensors are unchanged."""
        return self.versions == tensor_versions(modules, self.memory, self.last_update)


def tensor_versions(modules: torch.nn.Module, *tensors: Tensor) -> tuple:
    r"""Identity and in-place version of each parameter and tensor."""
    return tuple((id(x), x._version) for x in (*modules.parameters(), *tensors))


def computed_rows(modules: torch.nn.Module, n_id: Tensor, memory: Tensor,
                  last_update: Tensor, clock: int) -> Rows:
    r"""A :class:`Rows` record of rows read at :obj:`clock`."""
    return Rows(n_id, memory, last_update, clock,
                tensor_versions(modules, memory, last_update))


def new_rows(state: MemoryState, steps, rows: Rows | None, n_id: Tensor, modules,
             scratch: Tensor, device: torch.device,
             pad_all: bool = False) -> tuple[Tensor, Tensor]:
    r"""The updated rows of :obj:`n_id`: :obj:`rows`' where still valid
    (:meth:`MemoryState.changed`), the rest recomputed, padded by
    :func:`pad_rows` when partial (always with :obj:`pad_all`).
    :obj:`scratch`: an :obj:`[N]` long buffer on :obj:`device`."""
    reuse = pos = None
    if rows is not None and rows.n_id.numel():
        c_nid = rows.n_id
        scratch.index_copy_(0, c_nid, torch.arange(c_nid.numel(), device=c_nid.device))
        pos = scratch.index_select(0, n_id).clamp_(0, c_nid.numel() - 1)
        reuse = c_nid.index_select(0, pos) == n_id
        if state.clock != rows.clock:  # some write since: which rows it touched
            state_id = n_id.to(state.device)
            owner, partner = steps.partners(state, state_id)
            reuse &= ~state.changed(state_id, rows.clock, owner, partner).to(reuse.device)
        if bool(reuse.all()):
            return rows.memory.index_select(0, pos), rows.last_update.index_select(0, pos)
    redo = None if reuse is None else (~reuse).nonzero().view(-1)
    whole = redo is None or redo.numel() == n_id.numel()
    sub = n_id if redo is None else n_id.index_select(0, redo)
    inputs = steps.gather(state, (update.pad_rows(sub) if pad_all or not whole
                                  else sub).to(state.device))
    r_mem, r_lu = steps.compute(update.move_inputs(inputs, device), modules)
    r_mem, r_lu = r_mem[:sub.numel()], r_lu[:sub.numel()]
    if whole:
        return r_mem, r_lu
    return (rows.memory.index_select(0, pos).index_copy(0, redo, r_mem),
            rows.last_update.index_select(0, pos).index_copy(0, redo, r_lu))


class SequentialExecutor:
    r"""Runs a memory's reads and writes on the calling thread, one after the
    other: PyG's semantics.

    Args:
        state (MemoryState): The memory's state.
        steps: The memory's update steps
            (:class:`~pyg_mspipe.nn._update.UpdateSteps`).
        committer (callable, optional): Applies each training iteration's
            write-back instead of :meth:`MemoryState.apply`.
            (default: :obj:`None`)
    """

    def __init__(self, state: MemoryState, steps, committer: Callable | None = None):
        self.state = state
        self.steps = steps
        self.committer = committer
        self._rows: Rows | None = None
        self._scratch = torch.zeros(state.num_nodes, dtype=torch.long)

    def paused(self, changes: bool = True):
        r"""A context in which the caller alone reads or changes the state."""
        return contextlib.nullcontext()

    def forget(self):
        r"""Drops what :meth:`forward` computed (the modules or state moved)."""
        self._rows = None

    def read(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""The stored memory and last update of :obj:`n_id`."""
        state_id = n_id.to(self.state.device)
        return (self.state.memory.index_select(0, state_id).to(n_id.device),
                self.state.last_update.index_select(0, state_id).to(n_id.device))

    def forward(self, n_id: Tensor, modules) -> tuple[Tensor, Tensor]:
        r"""The memory and last update of :obj:`n_id` after their pending
        messages, differentiably; kept for :meth:`update_state`."""
        clock = self.state.clock
        inputs = self.steps.gather(self.state, n_id.to(self.state.device))
        memory, last_update = self.steps.compute(update.move_inputs(inputs, n_id.device),
                                                 modules)
        self._rows = computed_rows(modules, n_id, memory, last_update, clock)
        return memory, last_update

    def update_state(self, plan: EventPlan | None, modules, training: bool,
                     flushes: bool):
        r"""Applies a batch (:obj:`None`: an empty one). In training mode, or
        without :obj:`flushes`, the batch's nodes get their updated memory
        (reusing :meth:`forward`'s rows) and its messages become pending;
        otherwise the messages are stored first and applied at once."""
        rows, self._rows = self._rows, None
        if rows is not None and not rows.still_valid(modules):
            rows = None
        if plan is not None and modules.validate:
            check_order(plan.t_min, self.state.last_t)
        if plan is None:
            if training:  # (a committer sees every iteration)
                self.commit(None, None)
            return
        if training or not flushes:
            device = plan.n_id.device
            self._scratch = self._scratch.to(device)  # (no copy on the same device)
            memory, last_update = new_rows(self.state, self.steps, rows, plan.n_id, modules,
                                           self._scratch, device)
            write_back = self.steps.write_back(self.state, plan, memory, last_update, modules)
            if training:
                self.commit(write_back, plan)
            else:
                self.state.apply(write_back)
        else:
            messages = self.steps.messages(self.state, plan, modules, updated=False)
            self.state.store_messages(messages, plan.t_max)
            memory, last_update = new_rows(self.state, self.steps, None, plan.n_id, modules,
                                           self._scratch, plan.n_id.device)
            self.state.write(plan.n_id, memory, last_update)

    def commit(self, write_back: WriteBack | None, plan: EventPlan | None):
        r"""Commits a training iteration's write-back: the committer's, or
        :meth:`MemoryState.apply` (nothing for :obj:`None`)."""
        if self.committer is not None:
            self.committer(write_back, plan)
        elif write_back is not None:
            self.state.apply(write_back)

    def flush(self, modules):
        r"""Applies every pending message (leaving training mode)."""
        update.flush(self.state, modules)
        self._rows = None

    def reset(self):
        r"""The initial state."""
        self.state.reset()
        self._rows = None

    def close(self):
        r"""Nothing runs in the background."""


def sequential(memory) -> SequentialExecutor:
    r"""The sequential executor of :obj:`memory` (what a pipeline runs
    outside its training reads and writes)."""
    return memory._sequential


def install(memory, executor):
    r"""Makes :obj:`executor` run :obj:`memory`'s reads and writes (a
    pipelined epoch); refused while another one is installed."""
    current = memory._executor
    if current is not memory._sequential and current is not executor:
        raise RuntimeError("another pipeline is attached to this memory: close its epoch "
                           "first")
    memory._sequential.forget()
    memory._executor = executor


def uninstall(memory, executor):
    r"""Gives :obj:`memory` back its sequential executor (a no-op unless
    :obj:`executor` is installed)."""
    if memory._executor is executor:
        memory._executor = memory._sequential


def installed(memory):
    r"""The pipelined executor installed in :obj:`memory`, or :obj:`None`
    (a closed one is uninstalled here: it only runs the sequential one)."""
    executor = memory._executor
    if executor is not memory._sequential and executor.closed:
        executor = memory._executor = memory._sequential
    return None if executor is memory._sequential else executor
