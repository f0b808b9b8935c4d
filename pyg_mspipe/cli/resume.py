r"""Checkpoints of a ``pyg-mspipe train`` run: every N batches and at epoch
ends, atomically (through :func:`pyg_mspipe.save_checkpoint`), and resumed
mid-epoch."""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

from pyg_mspipe import load_checkpoint, save_checkpoint
from pyg_mspipe.cli.errors import ConfigError

__all__ = ["RunState", "RunCheckpoint", "RestoringLoader"]

#: Options that may differ between a checkpointed run and its resumption.
_FREE = {"epochs", "resume", "checkpoint_dir", "checkpoint_every", "json_path", "plots_dir"}


@dataclass
class RunState:
    r"""Where a run stands: epochs done, the finished epochs' records (as
    dicts), and of the epoch in progress its batches, loss sum, events and
    seconds so far."""
    epoch: int = 0
    records: list[dict] = field(default_factory=list)
    batches: int = 0
    loss_sum: float = 0.0
    events: int = 0
    seconds: float = 0.0

    @property
    def mid_epoch(self) -> bool:
        r"""Whether an epoch is in progress."""
        return self.batches > 0


class RunCheckpoint:
    r"""The checkpoint file of a run, :obj:`checkpoint.pt` in :obj:`folder`.

    Args:
        folder (Path): The checkpoint folder (created if missing).
        config (dict): The run's configuration; a resumption must match it
            (except for the number of epochs and where its outputs go).
    """

    def __init__(self, folder: Path, config: dict):
        self.path = Path(folder) / "checkpoint.pt"
        self.config = config

    def save(self, objects: dict, state: RunState):
        r"""Saves :obj:`objects` (by name) and :obj:`state`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.path, extra={"config": self.config, "state": state.__dict__},
                        **objects)

    def load(self, objects: dict, map_location=None) -> RunState:
        r"""Restores :obj:`objects` and the global RNGs; returns the run's
        state. Raises :class:`ConfigError` if there is no checkpoint or it was
        written by a run with other settings."""
        if not self.path.is_file():
            raise ConfigError(f"--resume: no checkpoint at '{self.path}'")
        try:
            extra = load_checkpoint(self.path, map_location=map_location, **objects)
        except (ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise ConfigError(f"--resume: cannot load '{self.path}': {exc}") from exc
        saved = extra["config"]
        for key, value in self.config.items():
            if key not in _FREE and saved.get(key) != value:
                raise ConfigError(f"--resume: the checkpoint was written with {key}="
                                  f"{saved.get(key)!r}, this run has {key}={value!r}")
        return RunState(**extra["state"])

    def restore_state(self, objects: dict, map_location=None):
        r"""Restores :obj:`objects` alone (not the RNGs), e.g. the memory and
        the neighbour loader again after an epoch start reset them."""
        load_checkpoint(self.path, restore_rng=False, map_location=map_location, **objects)


class RestoringLoader:
    r"""The training loader, restoring a checkpoint's memory and neighbour
    loader when the resumed epoch's iteration begins.
    :func:`~pyg_mspipe.engine.training.train_steps` resets both before it
    iterates over its loader (as PyG's example does at each epoch start);
    restoring at that moment puts back the state of the interrupted epoch
    (the loader's position and everything else were restored before).

    Args:
        loader (TemporalDataLoader): The training loader.
        checkpoint (RunCheckpoint): The checkpoint.
        objects (dict): The memory and the neighbour loader, by name.
        map_location (optional): As in :func:`torch.load`. (default: :obj:`None`)
    """

    def __init__(self, loader, checkpoint: RunCheckpoint, objects: dict, map_location=None):
        self.loader = loader
        self.checkpoint = checkpoint
        self.objects = objects
        self.map_location = map_location

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.checkpoint.restore_state(self.objects, self.map_location)
        return iter(self.loader)
