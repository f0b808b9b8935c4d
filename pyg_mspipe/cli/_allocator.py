r"""glibc's ``malloc`` set to keep a few MiB of freed memory mapped.

A training step allocates and frees tensors of a few MiB (the attention
inputs of a batch, their gradients). glibc returns such blocks to the
operating system when they are freed, so the next step maps and zero-fills
fresh pages for them again, a page fault per 4 KiB. ``pyg-mspipe`` raises
glibc's mmap and trim thresholds instead, as the environment variables
:obj:`MALLOC_MMAP_THRESHOLD_` and :obj:`MALLOC_TRIM_THRESHOLD_` would; it
leaves the allocator alone when either variable (or
:obj:`GLIBC_TUNABLES`) is set, and where there is no glibc.
"""
from __future__ import annotations

import ctypes
import os

#: Blocks up to this size come from the heap, not from their own mapping.
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of the heap kept mapped, at most.
TRIM_THRESHOLD = 64 * 2**20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
#: The environment variables that keep the user's own settings.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory(libc=None) -> bool:
    r"""Sets glibc's mmap threshold to :obj:`MMAP_THRESHOLD` and its trim
    threshold to :obj:`TRIM_THRESHOLD` for this process. Returns whether it
    did: :obj:`False` if the user set the allocator up in the environment or
    :obj:`libc` has no :obj:`mallopt`.

    Args:
        libc (ctypes.CDLL, optional): The C library; :obj:`None`: the one
            this process runs on. (default: :obj:`None`)
    """
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = (ctypes.CDLL(None) if libc is None else libc).mallopt
    except (AttributeError, OSError, TypeError):  # no glibc (macOS, musl, Windows)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
