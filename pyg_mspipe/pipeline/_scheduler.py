r"""The online scheduler of the MSPipe pipeline: profiles stage times,
computes the minimal staleness that keeps training from stalling, and says
how long a memory fetch may be delayed."""
from __future__ import annotations

import math
import time


class StalenessScheduler:
    r"""Decides, for each memory fetch, the staleness bound in force and the
    latest moment it may start.

    Profiles, as exponential moving averages, the memory fetch time
    :math:`\tau_3`, the write-back time :math:`\tau_5`, the training time
    :math:`\tau_4` of an iteration (the training thread's time, stalls
    excluded), and the *tail* :math:`\tau_t`: the training thread's time from
    :meth:`~pyg_mspipe.TGNMemory.update_state` (where the write-back is handed
    over) to the next iteration's :obj:`memory(n_id)` (where its fetch is
    needed): the backward pass and optimizer step, which the write-back and
    the next fetch overlap. After :obj:`profile_iterations` iterations it
    computes the smallest staleness that keeps training from waiting,

    .. math::
        s_{min} = \max\left(0, \left\lceil \frac{\tau_3 + \tau_5 - \tau_t}
        {\tau_4} \right\rceil\right),

    which is MSPipe's :math:`\lceil (\tau_3 + \tau_5) / \tau_4 \rceil` when
    the write-back only starts once training ends (:math:`\tau_t = 0`), and
    enforces :math:`\min(s_{min}, s)`; it keeps updating the profile
    (a :class:`~pyg_mspipe.TemporalDataLoader` carries it from one epoch to
    the next).

    In :obj:`"online"` mode a fetch waits for the next write-back as long as
    that still lets it finish before the training thread needs it, so the
    realised staleness is as low as the timing allows. In :obj:`"fixed"`
    mode every fetch happens right after the write-back of iteration
    :math:`i - s - 1` and before that of :math:`i - s` (realised staleness
    exactly :math:`\min(i, s)`): a deterministic schedule, whatever the
    timing, for reproducible runs and exact resume.

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
        self.tau = {"fetch": None, "write": None, "train": None, "tail": None}
        self.observed = 0  # training iterations profiled
        self._last_need: float | None = None  # when the last fetch was needed

    # ------------------------------------------------------------- profile
    def observe(self, stage: str, seconds: float):
        r"""Adds one measurement of :obj:`stage` (``"fetch"``, ``"write"``,
        ``"train"`` or ``"tail"``)."""
        old = self.tau[stage]
        self.tau[stage] = seconds if old is None else (
            self.momentum * old + (1 - self.momentum) * seconds)
        if stage == "train":
            self.observed += 1

    def needed(self, when: float | None = None):
        r"""The training thread needs a fetch now (records the moment)."""
        self._last_need = time.perf_counter() if when is None else when

    @property
    def s_min(self) -> int | None:
        r""":math:`s_{min}` once profiled, else :obj:`None`."""
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
        if self._last_need is None or self.tau["train"] is None or self.tau["fetch"] is None:
            return -math.inf
        return self._last_need + self.tau["train"] - self.safety * self.tau["fetch"]

    def write_fits(self, now: float) -> bool:
        r"""Whether one more write-back fits before the deadline."""
        write = self.tau["write"] or 0.0
        return now + write <= self.deadline()

    def state_dict(self) -> dict:
        return {"tau": dict(self.tau), "observed": self.observed}

    def load_state_dict(self, state: dict):
        self.tau = {**self.tau, **state["tau"]}
        self.observed = int(state["observed"])
