r"""A background producer thread with a bounded queue that never hangs.

:class:`BackgroundIterator` runs a producer in a daemon thread and hands its
items to the consuming thread in order. An exception in the producer is
re-raised in the consumer (the original exception object, with its original
traceback) as soon as the consumer asks for the next item. Stopping (break out
of the loop, an exception or KeyboardInterrupt in the consumer, garbage
collection, or :meth:`close`) ends the thread promptly: every blocking call in
the producer waits in short slices and checks the stop flag.
"""
from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["BackgroundIterator", "ProducerStopped", "start_thread"]

_POLL = 0.05  # seconds between stop-flag checks in blocking calls


def start_thread(target: Callable[[], None], name: str,
                 num_threads: int | None = 1) -> threading.Thread:
    r"""Starts :obj:`target` in a daemon thread whose PyTorch operations use
    :obj:`num_threads` intra-op threads (:obj:`None`: leave the default),
    without changing the caller's."""
    # torch.set_num_threads is per thread with OpenMP, but it also sets a
    # process-wide default that threads adopt when they first initialise:
    # the worker initialises itself, sets its count and signals; then the
    # caller restores the default (its own count is unchanged).
    caller_threads = torch.get_num_threads()  # also initialises this thread
    configured = threading.Event()

    def run():
        try:
            if num_threads is not None:
                torch.get_num_threads()  # initialise this thread first
                torch.set_num_threads(num_threads)
        finally:
            configured.set()
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if num_threads is not None:
        configured.wait(timeout=5.0)
        torch.set_num_threads(caller_threads)
    return thread


class ProducerStopped(Exception):
    r"""Raised inside the producer when the consumer has stopped."""


class _End:
    pass


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class BackgroundIterator:
    r"""Iterates over the items that :obj:`producer(emit)` emits, produced in
    a background thread at most :obj:`depth` items ahead.

    Args:
        producer (callable): Called once in the worker thread with an
            :obj:`emit(item)` function; it emits the items in order and returns
            when done. :obj:`emit` raises :class:`ProducerStopped` once the
            consumer has stopped; let it propagate.
        depth (int): Maximum number of items produced ahead. (default: :obj:`2`)
        name (str, optional): Thread name. (default: :obj:`"pyg-mspipe-prefetch"`)
        num_threads (int, optional): Intra-op threads of PyTorch operations in
            the worker (a per-thread setting with PyTorch's OpenMP backend).
            One keeps the worker from competing with the training thread's
            own thread team for the cores. (default: :obj:`1`)
    """

    def __init__(self, producer: Callable[[Callable[[Any], None]], None], depth: int = 2,
                 name: str = "pyg-mspipe-prefetch", num_threads: int | None = 1):
        if depth < 1:
            raise ValueError(f"'depth' must be >= 1 (got {depth})")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        stop, q = self._stop, self._queue

        def emit(item):
            while True:
                if stop.is_set():
                    raise ProducerStopped()
                try:
                    q.put(item, timeout=_POLL)
                    return
                except queue.Full:
                    continue

        def run():
            try:
                producer(emit)
                emit(_End())
            except ProducerStopped:
                return
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                try:
                    emit(_Failure(exc))
                except ProducerStopped:
                    return

        self._thread = start_thread(run, name, num_threads)
        # Stop the thread when this iterator is dropped (e.g. `break`).
        self._finalizer = weakref.finalize(self, BackgroundIterator._shutdown, stop,
                                           self._thread)

    @staticmethod
    def _shutdown(stop: threading.Event, thread: threading.Thread, timeout: float = 5.0):
        stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout)

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError(
                        "the background producer thread died without a result") from None
        if isinstance(item, _End):
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.exc
        return item

    def close(self):
        r"""Stops the producer thread and waits for it (at most 5 seconds)."""
        self._done = True
        self._finalizer()

    @property
    def alive(self) -> bool:
        r"""Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
