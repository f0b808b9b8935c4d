"""Fixtures of the command-line tests."""
from .common import one_thread  # noqa: F401
