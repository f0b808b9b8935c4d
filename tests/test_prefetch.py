"""BackgroundIterator: order, errors, shutdown, thread settings."""
import subprocess
import sys
import threading
import time

import pytest

from pyg_mspipe.prefetch import BackgroundIterator

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
        "from pyg_mspipe.prefetch import BackgroundIterator\n"
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
