r"""One-call checkpoints of a whole training run, resumable mid-epoch."""
from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyg_mspipe import _cuda
from pyg_mspipe.nn._update import KeptInputs, MessageInputs
from pyg_mspipe.nn.apan import APANInputs

__all__ = ["save_checkpoint", "load_checkpoint"]

_FORMAT = "pyg-mspipe-checkpoint/1"

# Besides what torch.load(weights_only=True) accepts, the records a
# pipelined epoch's position holds (its fetched inputs): NamedTuples of
# tensors and numbers, rebuilt by tuple.__new__ alone.
_RECORDS = [KeptInputs, MessageInputs, APANInputs]


def _numpy_rng_state() -> dict:
    state = np.random.get_state(legacy=False)  # the key as a tensor, not an ndarray
    key = torch.from_numpy(state["state"]["key"].astype(np.int64))
    return {**state, "state": {**state["state"], "key": key}}


def _set_numpy_rng_state(state: dict):
    key = state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state({**state, "state": {**state["state"], "key": key}})


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": _numpy_rng_state(), "cuda": _cuda.rng_state()}


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    _set_numpy_rng_state(state["numpy"])
    _cuda.set_rng_state(state.get("cuda"))


def _unsafe_globals(path: Path) -> list[str]:
    # What a weights-only load of `path` would refuse, read from its pickle
    # without unpickling it.
    with torch.serialization.safe_globals(_RECORDS):
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))


def _refusal(path, error: pickle.UnpicklingError) -> str:
    # One line saying why a weights-only load refused `path`.
    try:
        unsafe = _unsafe_globals(Path(path))
    except (ValueError, RuntimeError, OSError):  # the legacy format: torch names the first
        unsafe = re.findall(r"GLOBAL ([\w.]+)", str(error))
    if unsafe:
        why = f"loading it would run code ({', '.join(unsafe)}), which a checkpoint never does"
    else:
        lines = [line for line in str(error).splitlines() if line.strip()]
        why = f"it is not data a checkpoint holds ({lines[min(1, len(lines) - 1)]})"
    return f"'{path}' is refused: {why}; nothing was restored"


def save_checkpoint(path: str | os.PathLike, extra: Any = None, **objects) -> Path:
    r"""Saves everything a run needs to resume exactly, in one call: the
    :meth:`state_dict` of every object given by keyword (modules, optimizers,
    :class:`~pyg_mspipe.TGNMemory` with its pending messages,
    :class:`~pyg_mspipe.LastNeighborLoader`, the position of a
    :class:`~pyg_mspipe.TemporalDataLoader` inside its epoch), the states of
    the global RNGs (PyTorch, CUDA, Python, NumPy), and :obj:`extra`.

    The file is written to a temporary name and renamed into place, so a run
    killed while saving leaves the previous checkpoint intact.

    Args:
        path (str): Checkpoint file.
        extra (Any, optional): Data to keep with it (epoch, loss history,
            ...): tensors, numbers, strings, and lists, tuples, sets and
            dicts of them, what :func:`load_checkpoint` loads without
            running code. (default: :obj:`None`)
        **objects: Objects with :meth:`state_dict` (and
            :meth:`load_state_dict`), by name.

    Example:
        >>> save_checkpoint("run.pt", model=gnn, memory=memory,
        ...                 neighbor_loader=neighbor_loader, optimizer=optimizer,
        ...                 loader=train_loader, extra={"epoch": epoch})
    """
    path = Path(path)
    payload = {"format": _FORMAT, "rng": _rng_state(), "extra": extra, "objects": {}}
    for name, obj in objects.items():
        if not hasattr(obj, "state_dict"):
            raise TypeError(f"'{name}' has no state_dict() ({type(obj).__name__})")
        payload["objects"][name] = obj.state_dict()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    unsafe = _unsafe_globals(tmp)
    if unsafe:
        tmp.unlink()
        raise TypeError(f"a checkpoint holds data only, and this one would hold "
                        f"{', '.join(unsafe)} (from 'extra' or a state_dict)")
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, *, restore_rng: bool = True,
                    map_location=None, **objects) -> Any:
    r"""Restores a checkpoint written by :func:`save_checkpoint` into the given
    objects (by the same names) and the global RNGs; returns its
    :obj:`extra`.

    The file is read as data (:obj:`torch.load(..., weights_only=True)`): a
    file that would run code when loaded (a pickled callable, an object of a
    class outside the checkpoint's records) is refused with
    :class:`pickle.UnpicklingError` before anything is restored.

    Args:
        path (str): Checkpoint file.
        restore_rng (bool, optional): Restore the global RNG states.
            (default: :obj:`True`)
        map_location (optional): As in :func:`torch.load`. (default: :obj:`None`)
        **objects: Objects with :meth:`load_state_dict`, by name.
    """
    try:
        with torch.serialization.safe_globals(_RECORDS):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(_refusal(path, error)) from error
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"'{path}' is not a pyg-mspipe checkpoint")
    saved = payload["objects"]
    missing = sorted(set(objects) - set(saved))
    if missing:
        raise KeyError(f"the checkpoint has no state for {missing} (it has {sorted(saved)})")
    for name, obj in objects.items():
        obj.load_state_dict(saved[name])
    if restore_rng:
        _set_rng_state(payload["rng"])
    return payload["extra"]
