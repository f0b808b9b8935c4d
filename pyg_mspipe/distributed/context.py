r"""The process group of a data-parallel run, and how a failure of one rank
reaches every other one as an error naming it."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from pyg_mspipe import _cuda

__all__ = ["DistributedContext", "DistributedError"]

_REPORT_KEY = "pyg_mspipe/failure"


class DistributedError(RuntimeError):
    r"""A collective could not complete because a rank failed: the message
    names the failing rank (or the ranks that did not answer)."""


class DistributedContext:
    r"""One rank's view of a data-parallel run: its rank, the world size, the
    rendezvous store and its process groups (the default one for gradients;
    gloo groups of their own for the memory's write-back exchange,
    :attr:`commit_group`, the epoch barriers, :attr:`health_group`, and
    failure probes, :attr:`probe_group`). Every collective of
    :mod:`pyg_mspipe.distributed` runs through :meth:`run`: if it fails, the
    :class:`DistributedError` raised names the failing rank, and nothing
    waits longer than :obj:`timeout` plus twice :obj:`report_timeout` (see
    :doc:`distributed`, "Failures"). Create one with :meth:`init`.

    Args:
        rank (int): This process's rank.
        world_size (int): Number of processes.
        store (torch.distributed.Store): The rendezvous store.
        timeout (float): Seconds any collective may wait.
        report_timeout (float): Seconds spent finding the failing rank
            after a collective failed.
        local_rank (int, optional): Rank on this machine. (default: :obj:`0`)
    """

    def __init__(self, rank: int, world_size: int, store: dist.Store, timeout: float,
                 report_timeout: float, local_rank: int = 0):
        self.rank = rank
        self.world_size = world_size
        self.store = store
        self.timeout = timeout
        self.report_timeout = report_timeout
        self.local_rank = local_rank
        td = timedelta(seconds=timeout)
        self.commit_group = dist.new_group(backend="gloo", timeout=td)
        self.health_group = dist.new_group(backend="gloo", timeout=td)
        self.probe_group = dist.new_group(backend="gloo", timeout=td)
        self._lock = threading.Lock()
        self._failure: DistributedError | None = None

    @classmethod
    def init(cls, backend: str | None = None, *, rank: int | None = None,
             world_size: int | None = None, store: dist.Store | None = None,
             timeout: float = 300.0, report_timeout: float = 10.0) -> DistributedContext:
        r"""Initialises :mod:`torch.distributed` and returns the context;
        without :obj:`rank`, :obj:`world_size` and :obj:`store`, from
        torchrun's environment.

        Args:
            backend (str, optional): Backend of the default group.
                (default: :obj:`"nccl"` if CUDA is available, else
                :obj:`"gloo"`)
            rank (int, optional): Rank, with :obj:`world_size` and
                :obj:`store`. (default: :obj:`None`)
            world_size (int, optional): Number of processes.
                (default: :obj:`None`)
            store (torch.distributed.Store, optional): Rendezvous store.
                (default: :obj:`None`)
            timeout (float, optional): Seconds any collective may wait
                (the process groups' timeout). (default: :obj:`300.0`)
            report_timeout (float, optional): Seconds spent naming the
                failing rank after a collective failed. (default: :obj:`10.0`)
        """
        given = [x is not None for x in (rank, world_size, store)]
        if any(given) and not all(given):
            raise ValueError("pass 'rank', 'world_size' and 'store' together, or none of "
                             "them (torchrun's environment)")
        if not timeout > 0 or not report_timeout > 0:
            raise ValueError(f"'timeout' and 'report_timeout' must be > 0 (got {timeout}, "
                             f"{report_timeout})")
        if dist.is_initialized():
            raise RuntimeError("torch.distributed is initialised already: create the "
                               "DistributedContext once per process")
        local_rank = 0
        if store is None:
            for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
                if name not in os.environ:
                    raise RuntimeError(f"no launch context: '{name}' is not set (run under "
                                       "torchrun, or pass rank, world_size and store)")
            store, rank, world_size = next(dist.rendezvous(
                "env://", timeout=timedelta(seconds=timeout)))
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if backend is None:
            backend = _cuda.process_group_backend()
        # (NCCL: a failed collective aborts its communicator, so that the
        # error surfaces instead of a hang; no other backend reads it)
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        dist.init_process_group(backend, store=dist.PrefixStore("pg", store), rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout))
        return cls(rank, world_size, store, timeout, report_timeout, local_rank)

    def close(self):
        r"""Destroys the process groups."""
        if dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------- failures
    @contextlib.contextmanager
    def guard(self):
        r"""Context around a rank's training: an exception raised inside it
        is reported in the store (so that the other ranks' errors name this
        rank) and re-raised."""
        try:
            yield self
        except BaseException as exc:
            if not isinstance(exc, DistributedError):
                self.report(f"rank {self.rank} raised {type(exc).__name__}: {exc}")
            raise

    def report(self, message: str):
        r"""Leaves :obj:`message` in the store as the run's failure (the
        first report wins)."""
        with contextlib.suppress(Exception):  # (the store may be gone too)
            if self.store.add(_REPORT_KEY + "/count", 1) == 1:
                self.store.set(_REPORT_KEY, message)

    def run(self, what: str, fn, *args, **kwargs):
        r"""Runs the collective :obj:`fn(*args, **kwargs)`; if it fails,
        raises :class:`DistributedError` naming the failing rank."""
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise self.failure(what, exc) from exc

    def failure(self, what: str, exc: BaseException) -> DistributedError:
        r"""The error of a failed collective (found once per process: a
        second thread whose collective failed too gets the same one)."""
        with self._lock:
            if self._failure is None:
                self._failure = DistributedError(
                    f"rank {self.rank}: {what} failed: {self._find(what, exc)}")
            return self._failure

    def _find(self, what: str, exc: BaseException) -> str:
        report = self._wait_report()
        if report is not None:
            return report
        if what == "barrier":  # a monitored barrier names the ranks itself
            message = f"{exc}"
            self.report(f"rank {self.rank} observed: {message}")
            return message
        # Nobody reported: a rank died or hangs. Every live rank answers a
        # probe of rank 0 on the probe group; rank 0 names (and reports) the
        # ranks that do not.
        self._probe()
        report = self._wait_report()
        if report is not None:
            return report
        return f"no rank reported a failure, and rank 0 did not answer the probe ({exc})"

    def _probe(self):
        token = torch.zeros(1)
        timeout = timedelta(seconds=self.report_timeout)
        if self.rank != 0:
            try:
                dist.isend(token, dst=0, group=self.probe_group).wait(timeout)
            except RuntimeError:
                self.report("rank 0 is unreachable (its connection was lost: the process "
                            "died)")
            return
        begin = time.monotonic()
        works, lost, silent = {}, [], []
        for r in range(1, self.world_size):
            try:
                works[r] = dist.irecv(torch.zeros(1), src=r, group=self.probe_group)
            except RuntimeError:  # the connection is gone already
                lost.append(r)
        for r, work in works.items():
            left = max(self.report_timeout - (time.monotonic() - begin), 0.0)
            try:
                work.wait(timedelta(seconds=left))
            except RuntimeError:
                # an error before the deadline: the connection is gone
                elapsed = time.monotonic() - begin
                (lost if elapsed < self.report_timeout else silent).append(r)
        parts = []
        if lost:
            lost.sort()
            parts.append(f"{_ranks(lost)} unreachable (connection lost: the process died)")
        if silent:
            parts.append(f"{_ranks(silent)} did not answer within {self.report_timeout:g} s "
                         "(hung, or still blocked in a collective)")
        if parts:
            self.report("rank 0 probed the ranks: " + "; ".join(parts))

    def _wait_report(self) -> str | None:
        try:
            self.store.wait([_REPORT_KEY], timedelta(seconds=self.report_timeout))
            return self.store.get(_REPORT_KEY).decode()
        except Exception:  # noqa: BLE001 - no report in time, or the store is gone
            return None

    # --------------------------------------------------------- collectives
    def barrier(self):
        r"""A monitored barrier on :attr:`health_group` (at epoch
        boundaries): raises :class:`DistributedError` naming the ranks that
        did not arrive within :obj:`timeout`."""
        self.run("barrier", dist.monitored_barrier, group=self.health_group,
                 timeout=timedelta(seconds=self.timeout), wait_all_ranks=True)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(rank={self.rank}, world_size={self.world_size}, "
                f"timeout={self.timeout:g})")


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))
