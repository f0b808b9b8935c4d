r"""A background producer thread with a bounded buffer that never hangs, and
worker threads with their own intra-op thread count."""
from __future__ import annotations

import ctypes
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import torch

_JOIN_TIMEOUT = 10.0  # seconds close() waits for a stopped producer to end

_native = None  # (omp_set_num_threads, MKL_Set_Num_Threads_Local or None), or ()
_native_lock = threading.Lock()


def _native_setters():
    global _native
    with _native_lock:
        if _native is None:
            _native = ()
            if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
                return _native  # native or TBB: one process-wide intra-op pool
            try:
                # finds the OpenMP runtime and MKL that PyTorch links
                lib = ctypes.CDLL(torch._C.__file__)
                omp = lib.omp_set_num_threads
                omp.argtypes, omp.restype = [ctypes.c_int], None
                try:
                    # the C interface (the lower-case name takes a pointer)
                    mkl = lib.MKL_Set_Num_Threads_Local
                    mkl.argtypes, mkl.restype = [ctypes.c_int], ctypes.c_int
                except AttributeError:
                    mkl = None
                _native = (omp, mkl)
            except (OSError, AttributeError, TypeError):
                pass
        return _native


def _check_num_threads(num_threads: int | None, allow_none: bool = True):
    if num_threads is None and allow_none:
        return
    if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
        raise ValueError(f"'num_threads' must be a positive integer"
                         f"{' or None' if allow_none else ''} (got {num_threads!r})")


def set_thread_num_threads(num_threads: int) -> bool:
    r"""Makes the PyTorch operations of the calling thread use
    :obj:`num_threads` intra-op threads, without changing the count of any
    other thread or the process-wide default (unlike
    :func:`torch.set_num_threads`). Needs PyTorch's OpenMP backend; otherwise
    nothing changes.

    Args:
        num_threads (int): Intra-op threads of this thread's operations.

    Returns:
        :obj:`True` if :func:`torch.get_num_threads` now returns
        :obj:`num_threads` in this thread, :obj:`False` otherwise.
    """
    _check_num_threads(num_threads, allow_none=False)
    torch.get_num_threads()  # initialise this thread's settings first
    setters = _native_setters()
    if setters:
        omp, mkl = setters
        omp(num_threads)
        if mkl is not None:
            mkl(num_threads)
    return torch.get_num_threads() == num_threads


def start_thread(target: Callable[[], None], name: str,
                 num_threads: int | None = 1) -> threading.Thread:
    r"""Starts :obj:`target` in a daemon thread whose PyTorch operations use
    :obj:`num_threads` intra-op threads (see :func:`set_thread_num_threads`).

    Args:
        target (callable): Run in the thread, with no arguments.
        name (str): Thread name.
        num_threads (int, optional): Intra-op threads of the worker
            (:obj:`None`: leave the default). (default: :obj:`1`)
    """
    _check_num_threads(num_threads)

    def run():
        try:
            if num_threads is not None:
                set_thread_num_threads(num_threads)
        finally:
            target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class ProducerStopped(Exception):
    r"""Raised inside the producer when the consumer has stopped."""


class _End:
    pass


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _Channel:
    r"""What the producer and the consumer share, guarded by :obj:`cond`."""

    def __init__(self, depth: int):
        self.cond = threading.Condition(threading.Lock())
        self.items: deque = deque()
        self.depth = depth
        self.stopped = False  # the consumer has stopped
        self.finished = False  # the producer thread has ended
        self.outcome: _End | _Failure | None = None  # None: ended without one

    def stop(self):
        with self.cond:
            self.stopped = True
            self.items.clear()
            self.cond.notify_all()


class BackgroundIterator:
    r"""Iterates over the items that :obj:`producer(emit)` emits, produced in
    a background thread at most :obj:`depth` items ahead. An exception in the
    producer is re-raised in the consumer; stopping the consumer (break,
    exception, garbage collection, :meth:`close`) stops the producer.

    Args:
        producer (callable): Called once in the worker thread with an
            :obj:`emit(item)` function; it emits the items in order and returns
            when done. :obj:`emit` raises :class:`ProducerStopped` once the
            consumer has stopped; let it propagate.
        depth (int): Maximum number of items produced ahead. (default: :obj:`2`)
        name (str, optional): Thread name. (default: :obj:`"pyg-mspipe-prefetch"`)
        num_threads (int, optional): Intra-op threads of the worker (see
            :func:`start_thread`). (default: :obj:`1`)
    """

    def __init__(self, producer: Callable[[Callable[[Any], None]], None], depth: int = 2,
                 name: str = "pyg-mspipe-prefetch", num_threads: int | None = 1):
        if depth < 1:
            raise ValueError(f"'depth' must be >= 1 (got {depth})")
        self._done = False
        self._channel = ch = _Channel(depth)

        def emit(item):
            with ch.cond:
                while len(ch.items) >= ch.depth and not ch.stopped:
                    ch.cond.wait()
                if ch.stopped:
                    raise ProducerStopped()
                ch.items.append(item)
                ch.cond.notify_all()

        def run():
            outcome = None  # stays None if the handlers below fail
            try:
                producer(emit)
                outcome = _End()
            except ProducerStopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                outcome = _Failure(exc)
            finally:
                with ch.cond:
                    ch.outcome, ch.finished = outcome, True
                    ch.cond.notify_all()

        self._thread = start_thread(run, name, num_threads)
        # Stop the thread when this iterator is dropped (e.g. `break`).
        self._finalizer = weakref.finalize(self, BackgroundIterator._shutdown, ch,
                                           self._thread, _JOIN_TIMEOUT)

    @staticmethod
    def _shutdown(ch: _Channel, thread: threading.Thread, timeout: float | None):
        # The finalizer: stop and wait a bounded time, never raise.
        ch.stop()
        if thread is not threading.current_thread():
            thread.join(timeout)

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        ch = self._channel
        with ch.cond:
            while not ch.items and not ch.finished and not ch.stopped:
                ch.cond.wait()
            if ch.stopped:  # closed from another thread meanwhile
                self._done = True
                raise StopIteration
            if ch.items:
                item = ch.items.popleft()
                ch.cond.notify_all()
                return item
            outcome, ch.outcome = ch.outcome, None
        self.close()
        if isinstance(outcome, _End):
            raise StopIteration
        if isinstance(outcome, _Failure):
            raise outcome.exc
        raise RuntimeError("the background producer thread died without a result")

    def close(self, timeout: float | None = _JOIN_TIMEOUT):
        r"""Stops the producer thread and waits for it to end.

        Args:
            timeout (float, optional): Seconds to wait (:obj:`None`: no bound).
                (default: :obj:`10.0`)

        Raises:
            RuntimeError: If the thread is still running after
                :obj:`timeout`; it ends at its next :obj:`emit`, and
                :meth:`close` can be called again to wait for it.
        """
        self._done = True
        thread = self._thread
        self._channel.stop()
        if thread is threading.current_thread():
            return  # called by the producer itself: it ends at its next emit
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(
                f"the background producer thread {thread.name!r} is still running "
                f"{timeout} seconds after it was asked to stop (it has not called "
                f"'emit' since); call close() again to wait for it")

    @property
    def alive(self) -> bool:
        r"""Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
