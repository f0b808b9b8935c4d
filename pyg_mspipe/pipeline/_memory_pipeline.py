r"""Stages 3 and 5 of MSPipe: staleness-bounded memory fetch and in-order
write-back, in a worker thread that owns every access to the memory state
while a pipelined epoch runs."""
from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections import deque
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn.utils import vector_to_parameters

from pyg_mspipe import _cuda
from pyg_mspipe._threads import start_thread
from pyg_mspipe._validation import check_order
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._executor import Rows, SequentialExecutor, computed_rows, new_rows
from pyg_mspipe.pipeline._scheduler import StalenessScheduler
from pyg_mspipe.pipeline.correction import StalenessCorrection
from pyg_mspipe.pipeline.errors import PipelineError
from pyg_mspipe.pipeline.stats import PipelineStats


class FetchRequest(NamedTuple):
    r"""A batch's memory read, announced ahead by the loader.

    Args:
        n_id (torch.Tensor): The nodes :obj:`memory(n_id)` will ask for.
        event (torch.cuda.Event, optional): Recorded after :obj:`n_id` was
            made, on the stream that made it (:obj:`None` on the CPU).
    """
    n_id: Tensor
    event: Any = None


class _Fetched(NamedTuple):
    n_id: Tensor  # the nodes it was fetched for (as delivered to the loop)
    inputs: Any  # update.gather output, on the compute device
    committed: int  # write-backs committed when it was read
    clock: int  # the state's clock when it was read
    event: Any  # CUDA event after the copy, or None


class _Forward(NamedTuple):
    index: int
    rows: Rows  # what forward computed (detached), at the fetch's clock


class _Pending(NamedTuple):
    index: int
    plan: Any  # update.EventPlan, or None: nothing to write
    rows: Rows | None  # what forward computed, if still good at update_state
    params: Tensor | None  # the update modules' parameters at update_state, flat
    event: Any


class _Modules(torch.nn.Module):
    # A private copy of the memory's update modules, for write-backs that
    # recompute with the parameters of their own iteration.
    def __init__(self, modules, names):
        super().__init__()
        # one deepcopy: a module shared between them (DyRep's structural
        # attention reads the memory's time encoder) stays shared
        copies = copy.deepcopy({name: getattr(modules, name) for name in names})
        for name in names:
            setattr(self, name, copies[name])


class MemoryPipeline:
    r"""The executor of a pipelined epoch, installed in the memory by
    :class:`~pyg_mspipe.TemporalDataLoader` with :obj:`staleness_bound`. A
    worker thread runs each iteration's memory fetch, at most the bound in
    force behind the committed write-backs, and each write-back, in iteration
    order and without losing an update; every other read or write runs the
    :obj:`sequential` executor inside :meth:`paused` (see
    ``docs/architecture.md``, "The path of one batch, prefetched and
    pipelined").

    Args:
        sequential (SequentialExecutor): The memory's own executor (its
            state, update steps and committer).
        modules (torch.nn.Module): The modules the steps run (the memory).
        staleness_bound (int): The largest staleness allowed.
        num_iterations (int): Batches in the epoch.
        first (int, optional): Index of the first batch. (default: :obj:`0`)
        schedule (str, optional): :obj:`"online"` or :obj:`"fixed"`.
            (default: :obj:`"online"`)
        correction (StalenessCorrection, optional): Refresh of each fetch
            before use. (default: :obj:`None`)
        profile_iterations (int, optional): Iterations profiled before the
            scheduler uses :math:`s_{min}`. (default: :obj:`10`)
        resume (dict, optional): :meth:`state_dict` of an interrupted epoch.
            (default: :obj:`None`)
        close_timeout (float, optional): Seconds :meth:`close` waits for the
            worker to finish its current stage before it raises.
            (default: :obj:`60.0`)
    """

    def __init__(self, sequential: SequentialExecutor, modules: torch.nn.Module,
                 staleness_bound: int, num_iterations: int, *, first: int = 0,
                 schedule: str = "online",
                 correction: StalenessCorrection | None = None, profile_iterations: int = 10,
                 resume: dict | None = None, close_timeout: float = 60.0):
        self._sequential = sequential
        self.state = sequential.state
        self.staleness_bound = staleness_bound
        self.scheduler = StalenessScheduler(staleness_bound, schedule, profile_iterations)
        self.stats = PipelineStats(staleness_bound)
        self.correction = correction
        # (fixed schedule) the write-backs a refreshed read may miss
        self._lag = None if correction is None else min(correction.lag, staleness_bound)
        self.end = num_iterations
        self.first = first
        self.close_timeout = close_timeout
        self.device = next(modules.parameters()).device
        # The memory's own update steps (TGN's, or another model's: APAN's
        # mailbox): every gather, compute and write-back below goes through them.
        self._steps = sequential.steps
        if correction is not None and not isinstance(self._steps, update.UpdateSteps):
            raise ValueError(f"'correction' refreshes TGN-style reads; "
                             f"{type(modules).__name__} has its own update steps")
        self._kept_only = getattr(self._steps, "kept_only", False)
        # (the worker's stream starts from the state as the training stream left it)
        self._stream = _cuda.new_stream(self.device)
        self._writer = _Modules(modules, self._steps.module_names)
        # The update modules' parameters, the memory's and the copy's in one
        # order; the copy's are views of one buffer, into which each
        # write-back loads the values handed over with it.
        live = dict(modules.named_parameters(remove_duplicate=False))
        self._params = [live[name] for name, _ in self._writer.named_parameters()]
        writer_params = list(self._writer.parameters())
        self._writer_flat = _flat(writer_params)
        vector_to_parameters(self._writer_flat, writer_params)
        self._assoc = torch.zeros(self.state.num_nodes, dtype=torch.long, device=self.device)

        # Shared by the training thread and the worker: the fields from
        # `_requests` to `_error`, read and written only under `_lock`. The
        # worker waits on `_work`, notified when what the scheduler decides
        # on changes (a request it can take, a hand-over, a loop waiting for
        # a fetch not yet made, closing); the training thread waits on
        # `_cond`, notified when a fetch or a commit lands or the worker
        # stops. `_state_lock` is held by whoever reads or writes the memory
        # state: the worker for each stage, or paused() for a change from
        # outside.
        self._lock = threading.RLock()  # (reentrant, as a Condition's default)
        self._cond = threading.Condition(self._lock)
        self._work = threading.Condition(self._lock)
        self._state_lock = threading.Lock()
        self._requests: dict[int, FetchRequest] = {}
        self._fetched: dict[int, _Fetched] = {}
        self._pending: deque[_Pending] = deque()
        self._committed = first  # iterations < this have their write-back applied
        self._submitted = first  # iterations < this have their write-back submitted
        self._next_fetch = first
        self._current = first - 1  # the iteration the training loop is in
        self._waiting = None  # the iteration whose fetch the loop waits for
        self._closing = False
        self._stopped = False
        self._exited = False  # the worker thread returned
        self._error: BaseException | None = None
        # The training thread's own (no lock).
        self._detached = False  # closed, the worker joined: sequential from now on
        self._reported = False
        self._fwd: _Forward | None = None
        self._handed: float | None = None  # when the last write-back was handed over
        self._load_stall = 0.0
        self._handed_t = self.state.last_t.clone()  # the largest time handed over
        self._train_begin: float | None = None
        self._stall = 0.0
        if resume is not None:
            self._load(resume)

        self._thread = start_thread(self._run, "pyg-mspipe-memory", num_threads=1)

    # ================================================== producer thread side
    def request(self, index: int, request: FetchRequest):
        r"""Iteration :obj:`index` will read the memory of
        :obj:`request.n_id`."""
        with self._lock:
            if index >= self._next_fetch:
                self._requests[index] = request
                if index == self._next_fetch:  # (the only fetch the worker can start)
                    self._work.notify()

    # ================================================== training thread side
    def begin(self, index: int, load_stall: float = 0.0):
        r"""The training loop received batch :obj:`index`."""
        self._raise_if_failed()
        now = time.perf_counter()
        with self._lock:
            self._end_iteration(now, load_stall)
            self._current = index
            self._train_begin = now
            self._stall = 0.0
            self._load_stall = load_stall
        self.stats.update(index, stall=load_stall)

    def _end_iteration(self, now: float, load_stall: float = 0.0):
        # (under the lock) close the training span of the current iteration,
        # and submit an empty write-back if the loop did not call update_state
        i = self._current
        if i < self.first:
            return
        if self._submitted <= i:
            self._pending.append(_Pending(i, None, None, None, None))
            self._submitted = i + 1
            self._work.notify()
        if self._train_begin is not None:
            self.stats.span(i, "train", self._train_begin, now)
            self.scheduler.observe("train", max(now - self._train_begin - self._stall
                                                - load_stall, 0.0))
            self._train_begin = None

    # ------------------------------------------------------- the executor
    def read(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""The committed memory and last update of :obj:`n_id`."""
        with self.paused(changes=False):
            return self._sequential.read(n_id)

    def forget(self):
        r"""Drops what :meth:`forward` computed."""
        self._fwd = None
        self._sequential.forget()

    def flush(self, modules):
        r"""Applies every pending message, the worker holding still."""
        with self.paused():
            self._sequential.flush(modules)

    def reset(self):
        r"""The initial state, the worker holding still."""
        with self.paused():
            self._sequential.reset()

    def forward(self, n_id: Tensor, modules) -> tuple[Tensor, Tensor]:
        r"""The updated memory of :obj:`n_id`: in training mode computed
        from the rows fetched for the current iteration."""
        if self._detached or not modules.training:
            with self.paused():
                return self._sequential.forward(n_id, modules)
        self._raise_if_failed()
        i = self._current
        fetched = self._take_fetch(i) if i >= self.first else None
        if fetched is not None and not _same(fetched.n_id, n_id):
            fetched = None
        if fetched is None:  # other nodes than prepared: read the committed state
            self.drain()
            with self._exclusive():
                inputs = self._steps.gather(self.state, n_id.to(self.state.device))
                fetched = _Fetched(n_id, update.move_inputs(inputs, n_id.device),
                                   self._committed, self.state.clock, None)
            if i >= self.first:
                self.stats.update(i, fallback=True, staleness=0,
                                  **({} if self.correction is None else
                                     {"refreshed_staleness": 0, "refreshed_rows": 0}))
        else:
            stream = _cuda.current_stream(self.device)
            _cuda.wait_event(stream, fetched.event)
            _cuda.record_stream(fetched.inputs, stream)
            if self.correction is not None:
                fetched = self._refresh_now(i, fetched)
        out, last_update = self._steps.compute(fetched.inputs, modules)
        detached = out.detach()  # (shares out's version counter)
        self._fwd = _Forward(i, computed_rows(modules, n_id, detached, last_update,
                                              fetched.clock))
        return out, last_update

    def _take_fetch(self, i: int) -> _Fetched | None:
        begin = time.perf_counter()
        self.scheduler.needed(begin)
        if self._handed is not None:  # backward + step of the previous batch
            self.scheduler.observe("tail", max(begin - self._handed - self._load_stall, 0.0))
            self._handed = None
        try:
            with self._lock:
                try:
                    self._waiting = i
                    if i not in self._fetched:  # (a waiting loop may make it urgent)
                        self._work.notify()
                    while i not in self._fetched or not self._refreshed(i):
                        self._check_worker()
                        if i not in self._fetched and self._next_fetch > i:
                            return None  # fetched and dropped or taken already
                        self._cond.wait()
                    return self._fetched.pop(i)
                finally:
                    self._waiting = None
        finally:
            stall = time.perf_counter() - begin
            self._stall += stall
            self.stats.update(i, stall=stall)

    def _refreshed(self, i: int) -> bool:
        # (under the lock) fixed schedule with correction: the fetch of i
        # has been refreshed by the worker up to the write-back of i - lag - 1
        if self._lag is None or self.scheduler.mode != "fixed":
            return True
        return self._fetched[i].committed >= i - self._lag

    def _refresh_now(self, i: int, fetched: _Fetched) -> _Fetched:
        # (training thread) the fetch made current to what is committed now;
        # the fixed schedule's refresh was done by the worker already. The
        # state lock is only tried: a busy worker means no refresh.
        if self.scheduler.mode != "fixed" and self._state_lock.acquire(blocking=False):
            try:
                _cuda.join(self.device, self._stream)
                with self._lock:
                    committed = self._committed
                fetched, rows = self._refresh(fetched, committed)
            finally:
                self._state_lock.release()
            self.stats.update(i, refreshed_rows=rows)
        self.stats.update(i, refreshed_staleness=i - fetched.committed)
        return fetched

    def _refresh(self, fetched: _Fetched, committed: int) -> tuple[_Fetched, int]:
        # (holding the state lock) the rows changed since the fetch, gathered again
        state = self.state
        inputs, rows = self.correction.refresh(state, fetched.inputs,
                                               fetched.n_id.to(state.device), fetched.clock,
                                               self._kept_only)
        return fetched._replace(inputs=inputs, committed=committed, clock=state.clock), rows

    def update_state(self, plan, modules, training: bool, flushes: bool):
        r"""In training mode, hands the write-back of the current iteration's
        (validated) :obj:`plan` to the worker."""
        if self._detached or not training:
            with self.paused():
                return self._sequential.update_state(plan, modules, training, flushes)
        self._raise_if_failed()
        i = self._current
        if i < self.first:
            raise RuntimeError("update_state() of a TGNMemory in a pipelined epoch must be "
                               "called inside the loop over the loader's batches")
        if self._submitted > i:
            raise RuntimeError(
                f"update_state() was already called in iteration {i} of this pipelined epoch; "
                "the pipeline commits one write-back per batch")
        if plan is not None and modules.validate:
            check_order(plan.t_min, self._handed_t)  # (the largest handed over)
        rows = None
        fwd, self._fwd = self._fwd, None
        if fwd is not None and fwd.index == i and fwd.rows.still_valid(modules):
            rows = fwd.rows
        params = None
        event = None
        if plan is not None:
            params = _flat(self._params)
            self._handed_t = torch.maximum(self._handed_t, plan.t_max)
            event = _cuda.current_event(self.device)
            _cuda.record_stream([rows, params, plan], self._stream)
        with self._lock:
            self._pending.append(_Pending(i, plan, rows, params, event))
            self._submitted = i + 1
            self._work.notify()
        self._handed = time.perf_counter()

    def drain(self, timeout: float | None = None):
        r"""Waits until every submitted write-back is committed; raises
        :class:`PipelineError` if that takes more than :obj:`timeout`
        seconds (:obj:`None`: no limit)."""
        if threading.current_thread() is self._thread:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._committed < self._submitted and self._error is None \
                    and not self._stopped:
                self._check_worker()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise PipelineError(f"the memory pipeline did not commit its write-backs "
                                        f"within {timeout:g} s")
                self._cond.wait(left)
        self._raise_if_failed()
        _cuda.join(self.device, self._stream)

    @contextlib.contextmanager
    def paused(self, changes: bool = True):
        r"""Context in which the caller alone reads or changes the memory
        state: submitted write-backs are committed first and the worker holds
        still. With :obj:`changes`, fetches already taken are dropped (read
        again from the changed state when their iteration comes)."""
        if self._detached:
            yield
            return
        self.drain()
        with self._exclusive():
            yield
            if changes:
                self._handed_t = self.state.last_t.clone()
                with self._lock:
                    self._fetched.clear()
                    self._fwd = None
                    self._cond.notify_all()

    @contextlib.contextmanager
    def _exclusive(self):
        # (training thread) the state lock, with the worker's stream caught up
        if not self._state_lock.acquire(timeout=self.close_timeout):
            raise PipelineError(f"the memory pipeline's worker held the memory state for "
                                f"over {self.close_timeout:g} s")
        try:
            _cuda.join(self.device, self._stream)
            yield
        finally:
            self._state_lock.release()

    def finish(self):
        r"""End of the epoch: commits everything, stops the worker."""
        with self._lock:
            self._end_iteration(time.perf_counter())
        self.close()

    def close(self):
        r"""Commits the submitted write-backs (writes are never lost) unless a
        stage failed and stops the worker; from then on every call runs the
        sequential executor. Raises :class:`PipelineError` if the worker is
        still running :obj:`close_timeout` seconds later (the pipeline then
        refuses to be used)."""
        with self._lock:
            self._closing = True  # no more gating of write-backs on fetches
            self._work.notify_all()
            failed = self._error is not None
        try:
            if not failed and self._thread.is_alive():
                with contextlib.suppress(BaseException):
                    self.drain(self.close_timeout)
        finally:
            with self._lock:
                self._stopped = True
                self._work.notify_all()
                self._cond.notify_all()
            if self._thread is not threading.current_thread():
                self._thread.join(self.close_timeout)
                if self._thread.is_alive():
                    raise PipelineError(
                        f"the memory pipeline's worker thread is still running "
                        f"{self.close_timeout:g} s after close()")
            _cuda.join(self.device, self._stream)
            self._detached = True

    @property
    def closed(self) -> bool:
        r"""Whether :meth:`close` stopped the worker (every call then runs
        the sequential executor)."""
        return self._detached

    @property
    def alive(self) -> bool:
        r"""Whether the worker thread runs."""
        return self._thread.is_alive()

    def _check_worker(self):
        # (under the lock)
        if self._error is not None:
            self._raise_if_failed()
        if self._stopped:
            raise PipelineError("the memory pipeline was closed")
        if self._exited:
            raise PipelineError("the memory pipeline's worker thread died")

    def _raise_if_failed(self):
        with self._lock:
            error = self._error
            if error is None:
                return
            first = not self._reported
            if first:
                self._reported = True
                # no reference to the raised exception (its traceback holds
                # the caller's frames, and through them this pipeline)
                self._error = PipelineError(
                    f"the memory pipeline failed earlier ({error!r}); the memory holds the "
                    "last committed iteration")
        if first:
            self.close()
            raise error
        raise PipelineError(str(error))

    # ======================================================== worker thread
    def _run(self):
        try:
            with torch.no_grad(), _cuda.on_stream(self._stream):
                while True:
                    action = self._next_action()
                    if action is None:
                        return
                    with self._state_lock:
                        if isinstance(action, _Pending):
                            self._write_back(action)
                        else:
                            self._fetch(*action)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the training loop
            with self._lock:
                self._error = exc
        finally:
            with self._lock:
                self._exited = True
                self._cond.notify_all()

    def _next_action(self):
        # The next stage to run, as the scheduler decides: a fetch (index,
        # bound) or a write-back (_Pending); None to stop. Waits on `_work`,
        # woken by every change of what decides that the worker does not make
        # itself (a request for the next fetch, a hand-over, a waiting loop,
        # closing), or for as long as the scheduler says.
        with self._lock:
            while not self._stopped:
                i = self._next_fetch
                action, arg = self.scheduler.decide(
                    fetch=i, requested=i in self._requests, committed=self._committed,
                    waiting=self._waiting == i,
                    write=self._pending[0].index if self._pending else None,
                    closing=self._closing, end=self.end, now=time.perf_counter())
                if action == "fetch":
                    return i, arg
                if action == "write":
                    return self._pending.popleft()
                self._work.wait(arg)
            return None

    def _fetch(self, i: int, bound: int):
        begin = time.perf_counter()
        state = self.state
        with self._lock:
            request = self._requests.pop(i)
            committed = self._committed
        # (n_id may have been made on another stream)
        _cuda.wait_event(self._stream, request.event)
        _cuda.record_stream(request, self._stream)
        state_id = request.n_id.to(state.device)
        clock = state.clock
        inputs = self._steps.gather(state, state_id)
        inputs = update.move_inputs(inputs, self.device)
        event = _cuda.record_event(self._stream)
        end = time.perf_counter()
        self.scheduler.observe("fetch", end - begin)
        self.stats.span(i, "fetch", begin, end)
        self.stats.update(i, staleness=i - committed, bound=bound)
        self.stats.s_min = self.scheduler.s_min
        self.stats.taus = dict(self.scheduler.tau)
        if i - committed > bound:  # cannot happen: the scheduler's own invariant
            raise PipelineError(f"iteration {i} read memory {i - committed} iterations stale, "
                                f"over the bound {bound}")
        with self._lock:
            self._fetched[i] = _Fetched(request.n_id, inputs, committed, clock,
                                        event)
            self._next_fetch = i + 1
            self._cond.notify_all()

    def _write_back(self, wb: _Pending):
        begin = time.perf_counter()
        if wb.plan is not None:
            _cuda.wait_event(self._stream, wb.event)
            # (the modules of this iteration: the transition may recompute
            # rows, and a model's write-back may read them, e.g. DyRep's)
            self._writer_flat.copy_(wb.params)
            # the new memory from the current state (forward's rows where still valid)
            new_mem, new_lu = new_rows(self.state, self._steps, wb.rows, wb.plan.n_id,
                                       self._writer, self._assoc, self.device, pad_all=True)
            # nothing above changed any state; commit it in one go
            self._sequential.commit(self._steps.write_back(self.state, wb.plan, new_mem,
                                                           new_lu, self._writer), wb.plan)
        else:  # an empty batch: a committer still sees the iteration
            self._sequential.commit(None, None)
        if self._lag is not None and self.scheduler.mode == "fixed":
            self._refresh_target(wb.index + self._lag + 1, wb.index + 1)
        end = time.perf_counter()
        if wb.plan is not None:
            self.scheduler.observe("write", end - begin)
            self.stats.span(wb.index, "write", begin, end)
        with self._lock:
            self._committed = wb.index + 1
            self._cond.notify_all()

    def _refresh_target(self, i: int, committed: int):
        # (worker, fixed schedule) the fetch of i refreshed right after the
        # write-back of i - lag - 1: exactly the commits the schedule fixes
        with self._lock:
            fetched = self._fetched.get(i)
        if fetched is None or fetched.committed >= committed:
            return
        _cuda.wait_event(self._stream, fetched.event)
        fetched, rows = self._refresh(fetched, committed)
        self.stats.update(i, refreshed_rows=rows)
        fetched = fetched._replace(event=_cuda.record_event(self._stream))
        with self._lock:
            self._fetched[i] = fetched

    # ======================================================== checkpoint
    def state_dict(self) -> dict:
        r"""What a mid-epoch checkpoint needs besides the (drained) memory:
        the fetches already taken for coming iterations and the scheduler's
        profile."""
        with self.paused(changes=False), self._lock:
            fetched = {i: (f.n_id.cpu(), update.move_inputs(f.inputs, torch.device("cpu")),
                           f.committed, f.clock)
                       for i, f in self._fetched.items()}
            return {"fetched": fetched, "next_fetch": self._next_fetch,
                    "committed": self._committed, "scheduler": self.scheduler.state_dict()}

    def _load(self, state: dict):
        for i, fetched in state["fetched"].items():
            n_id, inputs, committed, clock = fetched[:4]
            if i >= self.first:
                self._fetched[i] = _Fetched(
                    n_id.to(self.device), update.move_inputs(inputs, self.device), committed,
                    clock, None)
        self._next_fetch = max(self.first, state["next_fetch"])
        self._committed = self._submitted = self.first
        self.scheduler.load_state_dict(state["scheduler"])


def _flat(params: list) -> Tensor:
    # a copy of `params` in one vector (parameters_to_vector, without its
    # per-parameter device check and for any strides)
    return torch.cat([p.detach().reshape(-1) for p in params])


def _same(a: Tensor, b: Tensor) -> bool:
    if a is b:
        return True
    return a.shape == b.shape and a.device == b.device and bool(torch.equal(a, b))
