"""The online scheduler's arithmetic."""
import math

import pytest

from pyg_mspipe.pipeline._scheduler import StalenessScheduler


def test_s_min_after_profiling():
    s = StalenessScheduler(4, profile_iterations=3, momentum=0.0)
    assert s.s_min is None and s.bound() == 4
    for _ in range(3):
        s.observe("fetch", 0.002)
        s.observe("write", 0.005)
        s.observe("train", 0.003)
        s.observe("tail", 0.0)  # write-back starts when training ends: MSPipe's formula
    assert s.s_min == math.ceil(0.007 / 0.003) == 3
    assert s.bound() == 3
    s.observe("train", 0.1)  # training got slower
    assert s.s_min == 1 and s.bound() == 1
    s.observe("tail", 0.008)  # fetch + write-back fit in the backward pass
    assert s.s_min == 0 and s.bound() == 0
    s.observe("tail", 0.001)
    s.observe("train", 0.004)
    assert s.s_min == math.ceil((0.007 - 0.001) / 0.004) == 2


def test_bound_never_above_user_bound_and_fixed_mode():
    s = StalenessScheduler(1, profile_iterations=1, momentum=0.0)
    s.observe("fetch", 1.0)
    s.observe("write", 1.0)
    s.observe("train", 0.1)
    s.observe("tail", 0.0)
    assert s.s_min == 20 and s.bound() == 1
    fixed = StalenessScheduler(2, mode="fixed", profile_iterations=1)
    fixed.observe("fetch", 0.0)
    fixed.observe("write", 0.0)
    fixed.observe("train", 1.0)
    fixed.observe("tail", 0.5)
    assert fixed.s_min == 0 and fixed.bound() == 2


def test_deadline():
    s = StalenessScheduler(2, momentum=0.0, safety=2.0)
    assert s.deadline() == -math.inf
    s.observe("fetch", 0.01)
    s.observe("train", 0.1)
    s.observe("write", 0.02)
    s.needed(100.0)
    assert s.deadline() == pytest.approx(100.0 + 0.1 - 0.02)
    assert s.write_fits(100.0) and not s.write_fits(100.07)


def test_bad_mode():
    with pytest.raises(ValueError, match="schedule"):
        StalenessScheduler(1, mode="soon")


def _decide(s, **kw):
    args = dict(fetch=5, requested=True, committed=5, waiting=False, write=None,
                closing=False, end=10, now=0.0)
    args.update(kw)
    return s.decide(**args)


def test_decide_fixed_schedule():
    """Fixed bound s: fetch i right after the write-back of i - s - 1, and
    the write-back of i - s only after the fetch of i."""
    s = StalenessScheduler(2, "fixed")
    assert _decide(s, committed=3) == ("fetch", 2)  # 5 - 2 = 3 committed
    assert _decide(s, committed=2) == ("wait", None)  # too stale, nothing to commit
    assert _decide(s, committed=2, write=2) == ("write", None)
    assert _decide(s, committed=3, write=3, requested=False) == ("wait", None)  # 3 + 2 !< 5
    assert _decide(s, committed=2, write=2, requested=False) == ("write", None)  # 2 + 2 < 5
    assert _decide(s, committed=3, write=3, closing=True) == ("write", None)
    assert _decide(s, committed=8, write=8, fetch=10) == ("write", None)  # past the end
    assert _decide(s, fetch=10, committed=9) == ("wait", None)


def test_decide_online_schedule():
    """Online: fresh reads while they are free; a fetch the loop waits for
    goes first; otherwise commit while the fetch still fits before its
    deadline, and wait for the deadline when there is nothing to commit."""
    s = StalenessScheduler(3, profile_iterations=1, momentum=0.0, safety=1.0)
    assert _decide(s) == ("fetch", 3)  # nothing stale: fetch now
    assert _decide(s, committed=4, write=4) == ("write", None)  # no profile: commit first
    for stage, sec in (("fetch", 1.0), ("write", 1.0), ("train", 4.0), ("tail", 0.0)):
        s.observe(stage, sec)
    s.needed(100.0)  # the loop needed a fetch at t = 100: next deadline 100 + 4 - 1
    assert s.bound() == 1
    assert _decide(s, committed=4, waiting=True, now=100.0) == ("fetch", 1)
    assert _decide(s, committed=4, write=4, now=101.5) == ("write", None)  # 102.5 <= 103
    assert _decide(s, committed=4, write=4, now=102.5) == ("fetch", 1)  # 103.5 > 103
    action, seconds = _decide(s, committed=4, now=101.0)
    assert action == "wait" and seconds == pytest.approx(2.0)
    assert _decide(s, committed=4, now=103.0) == ("fetch", 1)
    assert _decide(s, committed=3, write=3, now=100.0) == ("write", None)  # over the bound
    assert _decide(s, committed=3, now=100.0) == ("wait", None)
