"""The command line's malloc settings: applied on glibc, never over the
user's own, skipped where there is no mallopt."""
import ctypes
import ctypes.util
import sys

import pytest

from pyg_mspipe.cli._allocator import MMAP_THRESHOLD, TRIM_THRESHOLD, keep_freed_memory


class _Recorder:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)


def test_sets_both_thresholds(clean_env):
    libc = _Recorder()
    assert keep_freed_memory(libc)
    assert libc.calls == [(-3, MMAP_THRESHOLD), (-1, TRIM_THRESHOLD)]


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                  "GLIBC_TUNABLES"])
def test_leaves_the_users_settings(clean_env, monkeypatch, name):
    monkeypatch.setenv(name, "1048576")
    libc = _Recorder()
    assert not keep_freed_memory(libc)
    assert libc.calls == []


def test_no_mallopt(clean_env):
    assert not keep_freed_memory(object())


def test_refused_value(clean_env):
    class Refusing(_Recorder):
        def mallopt(self, param, value):
            super().mallopt(param, value)
            return 0

    assert not keep_freed_memory(Refusing())


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="needs Linux's C library")
def test_this_process_libc(clean_env):
    # glibc accepts both values (musl has no mallopt: nothing set).
    assert keep_freed_memory() == hasattr(ctypes.CDLL(None), "mallopt")
