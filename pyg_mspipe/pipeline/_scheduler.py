r"""The online scheduler of the MSPipe pipeline: profiles stage times,
computes the minimal staleness that keeps training from stalling, and says
how long a memory fetch may be delayed."""
from __future__ import annotations

import math
import threading
import time


class StalenessScheduler:
    r"""Decides, for each memory fetch, the staleness bound in force and the
    latest moment it may start. After :obj:`profile_iterations` iterations
    it enforces :math:`\min(s_{min}, s)`, with :math:`s_{min}` the smallest
    staleness that keeps training from waiting (see
    :doc:`tutorial_pipeline`).

    Args:
        staleness_bound (int): The largest staleness allowed, :math:`s`.
        mode (str, optional): :obj:`"online"` or :obj:`"fixed"`.
            (default: :obj:`"online"`)
        profile_iterations (int, optional): Iterations profiled before
            :math:`s_{min}` is used. (default: :obj:`10`)
        momentum (float, optional): Weight of the past in the moving averages.
            (default: :obj:`0.9`)
        safety (float, optional): A fetch starts :obj:`safety` times its
            profiled duration before it is needed. (default: :obj:`1.5`)
    """

    MODES = ("online", "fixed")

    def __init__(self, staleness_bound: int, mode: str = "online", profile_iterations: int = 10,
                 momentum: float = 0.9, safety: float = 1.5):
        if mode not in self.MODES:
            raise ValueError(f"'schedule' must be one of {self.MODES} (got {mode!r})")
        self.staleness_bound = staleness_bound
        self.mode = mode
        self.profile_iterations = profile_iterations
        self.momentum = momentum
        self.safety = safety
        # every method holds it: both threads report and ask
        self._lock = threading.RLock()
        self.tau = {"fetch": None, "write": None, "train": None, "tail": None}
        self.observed = 0  # training iterations profiled
        self._last_need: float | None = None  # when the last fetch was needed

    # ------------------------------------------------------------- profile
    def observe(self, stage: str, seconds: float):
        r"""Adds one measurement of :obj:`stage` (``"fetch"``, ``"write"``,
        ``"train"`` or ``"tail"``)."""
        with self._lock:
            old = self.tau[stage]
            self.tau[stage] = seconds if old is None else (
                self.momentum * old + (1 - self.momentum) * seconds)
            if stage == "train":
                self.observed += 1

    def needed(self, when: float | None = None):
        r"""The training thread needs a fetch now (records the moment)."""
        with self._lock:
            self._last_need = time.perf_counter() if when is None else when

    @property
    def s_min(self) -> int | None:
        r""":math:`s_{min}` once profiled, else :obj:`None`."""
        with self._lock:
            if self.observed < self.profile_iterations or None in self.tau.values():
                return None
            train = max(self.tau["train"], 1e-9)
            need = self.tau["fetch"] + self.tau["write"] - self.tau["tail"]
            return max(0, math.ceil(need / train - 1e-9))

    def bound(self) -> int:
        r"""The staleness bound in force: :math:`\min(s_{min}, s)` once
        profiled (online mode), else :math:`s`."""
        s_min = self.s_min
        if self.mode == "fixed" or s_min is None:
            return self.staleness_bound
        return min(s_min, self.staleness_bound)

    def deadline(self) -> float:
        r"""The latest :func:`time.perf_counter` at which the next fetch may
        start without making the training thread wait (now, before any
        profile exists)."""
        with self._lock:
            if self._last_need is None or self.tau["train"] is None \
                    or self.tau["fetch"] is None:
                return -math.inf
            return self._last_need + self.tau["train"] - self.safety * self.tau["fetch"]

    def write_fits(self, now: float) -> bool:
        r"""Whether one more write-back fits before the deadline."""
        with self._lock:
            write = self.tau["write"] or 0.0
            return now + write <= self.deadline()

    def decide(self, *, fetch: int, requested: bool, committed: int, waiting: bool,
               write: int | None, closing: bool, end: int,
               now: float) -> tuple[str, float | None]:
        r"""The worker's next stage: :obj:`("fetch", bound)`,
        :obj:`("write", None)` (commit the oldest handed write-back,
        iteration :obj:`write`) or :obj:`("wait", seconds)` (:obj:`None`: until
        notified). :obj:`committed` counts committed write-backs,
        :obj:`waiting` says the training thread waits for fetch
        :obj:`fetch`, :obj:`end` is the epoch's number of iterations."""
        with self._lock:
            fixed = self.mode == "fixed"
            bound = self.bound()
            if fetch < end and requested and not closing and committed >= fetch - bound:
                if fixed or committed >= fetch or waiting:
                    return "fetch", bound
                deadline = self.deadline()
                if write is not None:
                    # commit first while that still leaves the fetch its time
                    # (no profile yet: commit first, staleness as low as can be)
                    if deadline == -math.inf or self.write_fits(now):
                        return "write", None
                    return "fetch", bound
                if now >= deadline:
                    return "fetch", bound
                return "wait", deadline - now if math.isfinite(deadline) else None
            if write is not None and (not fixed or closing or write + bound < fetch
                                      or write + bound >= end):
                return "write", None
            return "wait", None

    def state_dict(self) -> dict:
        with self._lock:
            return {"tau": dict(self.tau), "observed": self.observed}

    def load_state_dict(self, state: dict):
        with self._lock:
            self.tau = {**self.tau, **state["tau"]}
            self.observed = int(state["observed"])
