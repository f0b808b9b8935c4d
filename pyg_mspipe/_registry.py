r"""Live-instance registries, for loaders that find the one memory or
neighbour loader of a script on their own (``"auto"``)."""
from __future__ import annotations

import weakref
from typing import Any


class LiveInstances:
    r"""A weak set of the live instances of one class."""

    def __init__(self):
        self._live: weakref.WeakSet = weakref.WeakSet()

    def add(self, obj: Any):
        self._live.add(obj)

    def only(self) -> Any | None:
        r"""The only live instance, or :obj:`None` if there are none or several."""
        live = list(self._live)
        return live[0] if len(live) == 1 else None
