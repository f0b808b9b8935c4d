r"""One-call checkpoints of a whole training run, resumable mid-epoch."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint"]

_FORMAT = "pyg-mspipe-checkpoint/1"


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        extra (Any, optional): Anything picklable to keep with it (epoch,
            loss history, ...). (default: :obj:`None`)
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
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, *, restore_rng: bool = True,
                    map_location=None, **objects) -> Any:
    r"""Restores a checkpoint written by :func:`save_checkpoint` into the given
    objects (by the same names) and the global RNGs; returns its
    :obj:`extra`.

    Args:
        path (str): Checkpoint file.
        restore_rng (bool, optional): Restore the global RNG states.
            (default: :obj:`True`)
        map_location (optional): As in :func:`torch.load`. (default: :obj:`None`)
        **objects: Objects with :meth:`load_state_dict`, by name.
    """
    payload = torch.load(path, map_location=map_location, weights_only=False)
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
