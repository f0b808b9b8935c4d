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
