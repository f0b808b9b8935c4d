"""BackgroundIterator: order, errors, shutdown, thread settings."""
import gc
import json
import subprocess
import sys
import threading
import time

import pytest

import pyg_mspipe._threads as prefetch
from pyg_mspipe._threads import BackgroundIterator, start_thread

from .helpers import wait_no_threads

pytestmark = pytest.mark.timeout(60)


def test_items_in_order_and_end():
    assert list(BackgroundIterator(lambda emit: [emit(i) for i in range(50)], depth=3)) == \
        list(range(50))


def test_error_reraised_with_original_traceback():
    def producer(emit):
        emit(1)
        raise ValueError("boom in producer")

    it = BackgroundIterator(producer)
    assert next(it) == 1
    with pytest.raises(ValueError, match="boom in producer") as info:
        next(it)
    assert info.traceback[-1].name == "producer"
    with pytest.raises(StopIteration):
        next(it)


def test_close_stops_a_blocked_producer_promptly():
    started = threading.Event()

    def producer(emit):
        started.set()
        i = 0
        while True:
            emit(i)
            i += 1

    it = BackgroundIterator(producer, depth=1)
    started.wait(5)
    time.sleep(0.1)
    t0 = time.monotonic()
    it.close()
    assert time.monotonic() - t0 < 1.0
    assert not it.alive


def test_dropping_the_iterator_stops_the_thread():
    it = BackgroundIterator(lambda emit: [emit(i) for i in range(10**9)], depth=1,
                            name="pyg-mspipe-drop-test")
    next(it)
    del it
    deadline = time.monotonic() + 5
    while any(t.name == "pyg-mspipe-drop-test" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        BackgroundIterator(lambda emit: None, depth=0)


def test_worker_thread_count_does_not_leak_to_the_caller():
    # A fresh process: the caller's thread count must survive the worker
    # setting its own, also for threads that initialise afterwards.
    code = (
        "import threading, torch\n"
        "from pyg_mspipe._threads import BackgroundIterator\n"
        "torch.set_num_threads(2)\n"
        "seen = []\n"
        "it = BackgroundIterator(lambda emit: emit(torch.get_num_threads()))\n"
        "worker = next(it)\n"
        "t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))\n"
        "t.start(); t.join()\n"
        "print(worker, torch.get_num_threads(), seen[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["1", "2", "2"]


# The code object of threading.Condition.wait: a profile hook sees every call
# of it (queue.Queue, Event and Semaphore waits go through it too) and its
# timeout argument.
_WAIT = threading.Condition.wait.__code__


def _wait_recorder(waits, waiting):
    # A profile hook: records the timeout of every Condition.wait, and tells
    # `waiting` that the caller now waits.
    def profile(frame, event, arg):
        if event == "call" and frame.f_code is _WAIT:
            waits.append(frame.f_locals["timeout"])
            waiting.release()
    return profile


def test_a_waiting_consumer_is_woken_by_the_producer_not_a_timeout():
    waits = []
    consumer_waiting = threading.Semaphore(0)

    profile = _wait_recorder(waits, consumer_waiting)

    def producer(emit):
        for i in range(3):
            assert consumer_waiting.acquire(timeout=30)  # the consumer waits now
            emit(i)

    it = BackgroundIterator(producer, depth=1)
    sys.setprofile(profile)
    try:
        got = [next(it) for _ in range(3)]
    finally:
        sys.setprofile(None)
    assert got == [0, 1, 2]
    # One untimed wait per item: each one ended by the producer's notify.
    assert waits == [None] * 3
    assert list(it) == []


def test_a_producer_waiting_for_room_is_woken_by_the_consumer_not_a_timeout():
    waits = []
    producer_waiting = threading.Semaphore(0)

    def profile(frame, event, arg):
        if (event == "call" and frame.f_code is _WAIT
                and threading.current_thread().name == "pyg-mspipe-room-test"):
            waits.append(frame.f_locals["timeout"])
            producer_waiting.release()

    threading.setprofile(profile)  # for the threads started from now on
    try:
        it = BackgroundIterator(lambda emit: [emit(i) for i in range(4)], depth=1,
                                name="pyg-mspipe-room-test")
    finally:
        threading.setprofile(None)
    got = []
    for _ in range(3):
        assert producer_waiting.acquire(timeout=30)  # the producer waits for room
        got.append(next(it))
    assert got + list(it) == [0, 1, 2, 3]
    assert waits == [None] * 3  # items 1, 2 and 3 each waited for room once
    assert not it.alive


class _Escape(BaseException):
    pass


def test_a_producer_that_ends_without_a_result_wakes_the_consumer(monkeypatch):
    class FailingFailure(prefetch._Failure):  # the producer's handler fails
        def __init__(self, exc):
            raise _Escape() from exc

    escaped = []
    monkeypatch.setattr(prefetch, "_Failure", FailingFailure)
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_type))
    waits = []
    consumer_waiting = threading.Semaphore(0)

    profile = _wait_recorder(waits, consumer_waiting)

    def producer(emit):
        assert consumer_waiting.acquire(timeout=30)
        raise ValueError("boom")

    it = BackgroundIterator(producer)
    sys.setprofile(profile)
    try:
        with pytest.raises(RuntimeError, match="died without a result"):
            next(it)
    finally:
        sys.setprofile(None)
    assert waits == [None]  # woken by the dying thread's notify
    assert escaped == [_Escape]
    assert not it.alive


def test_close_raises_when_the_producer_does_not_stop_in_time():
    release, busy = threading.Event(), threading.Event()

    def producer(emit):
        emit(0)
        busy.set()
        release.wait(60)  # a long operation that does not call emit
        emit(1)

    it = BackgroundIterator(producer, depth=1, name="pyg-mspipe-stuck-test")
    try:
        assert next(it) == 0
        assert busy.wait(30)
        with pytest.raises(RuntimeError, match="'pyg-mspipe-stuck-test' is still running"):
            it.close(timeout=0.05)
        assert it.alive  # not silently detached
    finally:
        release.set()
    it.close()  # it stops at its next emit now
    assert not it.alive
    with pytest.raises(StopIteration):
        next(it)


def test_the_finalizer_of_a_stuck_producer_does_not_raise(monkeypatch):
    monkeypatch.setattr(prefetch, "_JOIN_TIMEOUT", 0.05, raising=False)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    release, busy = threading.Event(), threading.Event()

    def producer(emit):
        busy.set()
        release.wait(60)
        emit(0)

    it = BackgroundIterator(producer, name="pyg-mspipe-stuck-gc-test")
    assert busy.wait(30)
    del it  # the finalizer stops it and waits 0.05 s
    gc.collect()
    release.set()
    assert unraisable == []
    assert not [t for t in wait_no_threads(30) if t.name == "pyg-mspipe-stuck-gc-test"]


def test_start_thread_checks_num_threads_in_the_caller():
    with pytest.raises(ValueError, match="num_threads"):
        start_thread(lambda: None, "pyg-mspipe-bad-count", num_threads=0)


def test_worker_thread_count_never_shows_outside_the_worker():
    # A fresh process with a default of 3. The worker runs with 1, while the
    # caller, an already running thread and every thread that starts (before,
    # during or after, also from the worker) see 3 at every moment. Wrapping
    # torch.set_num_threads observes the instant any call of the process-wide
    # setter returns (there should be none from the worker).
    code = (
        "import importlib.util, json, sys, threading, torch\n"
        "spec = importlib.util.spec_from_file_location('prefetch', sys.argv[1])\n"
        "prefetch = importlib.util.module_from_spec(spec); spec.loader.exec_module(prefetch)\n"
        "start_thread = prefetch.start_thread\n"
        "torch.set_num_threads(3)\n"
        "def fresh():\n"
        "    out = []\n"
        "    t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))\n"
        "    t.start(); t.join()\n"
        "    return out[0]\n"
        "at_set, real = [], torch.set_num_threads\n"
        "def observed(n):\n"
        "    real(n)\n"
        "    at_set.append(fresh())\n"
        "torch.set_num_threads = observed\n"
        "stop, sampled = threading.Event(), set()\n"
        "def sampler():\n"
        "    while not stop.is_set():\n"
        "        sampled.update((torch.get_num_threads(), fresh()))\n"
        "s = threading.Thread(target=sampler); s.start()\n"
        "main, workers = set(), []\n"
        "for _ in range(20):\n"
        "    t = start_thread(lambda: workers.append((torch.get_num_threads(), fresh())),\n"
        "                     'pyg-mspipe-count-test', num_threads=1)\n"
        "    main.add(torch.get_num_threads())\n"
        "    t.join()\n"
        "stop.set(); s.join()\n"
        "print(json.dumps(dict(at_set=sorted(set(at_set)), sampled=sorted(sampled),\n"
        "                      main=sorted(main), workers=sorted(set(map(tuple, workers))),\n"
        "                      after=fresh())))\n"
    )
    # (prefetch.py alone: importing the package would take most of the time)
    out = json.loads(subprocess.run([sys.executable, "-c", code, prefetch.__file__],
                                    capture_output=True, text=True, timeout=55,
                                    check=True).stdout)
    assert out == dict(at_set=[], sampled=[3], main=[3], workers=[[1, 3]], after=3)


def test_set_thread_num_threads_sets_the_calling_thread_only():
    import torch

    before, got = torch.get_num_threads(), []

    def run():
        got.append((prefetch.set_thread_num_threads(1), torch.get_num_threads()))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():
        assert got == [(True, 1)]
    else:  # one process-wide intra-op pool: nothing to set per thread
        assert got[0][0] is (before == 1)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        prefetch.set_thread_num_threads(None)
