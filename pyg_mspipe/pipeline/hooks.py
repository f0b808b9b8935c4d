r"""Calls around the memory's stages, through the update steps seam
(:attr:`TGNMemory.steps`): to observe them, or to add a latency or a fault
to the fetch or the write-back."""
from __future__ import annotations

import copy
from collections.abc import Callable

__all__ = ["hook_stages"]

def hook_stages(memory, hook: Callable[[str], None]):
    r"""Makes :obj:`memory` call :obj:`hook(stage)` before each stage it
    runs, on whichever thread runs it: :obj:`"fetch"` (a read of some
    nodes' update inputs from the state) or :obj:`"write"` (building a
    batch's write-back),
    sequential or pipelined; an exception raised by :obj:`hook` is the
    stage's. Returns the steps it replaced (assign them back to
    :attr:`TGNMemory.steps` to remove the hook).

    .. code-block:: python

        hook_stages(memory, lambda stage: time.sleep(0.005))  # 5 ms each

    Args:
        memory (TGNMemory): The memory, between pipelined epochs.
        hook (callable): Called with the stage's name.
    """
    steps = memory.steps
    base = type(steps)

    class Hooked(base):
        def gather(self, state, n_id):
            hook("fetch")
            return base.gather(self, state, n_id)

        def write_back(self, *args, **kwargs):
            hook("write")
            return base.write_back(self, *args, **kwargs)

    Hooked.__name__ = Hooked.__qualname__ = f"Hooked{base.__name__}"
    hooked = copy.copy(steps)
    hooked.__class__ = Hooked
    memory.steps = hooked
    return steps
