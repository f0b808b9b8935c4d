r"""PNG plots of a run: loss and AP per epoch, the pipeline's timeline."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.cli.summary import RunSummary

__all__ = ["save_plots", "save_timeline", "check_matplotlib"]


def check_matplotlib(option: str):
    r"""Raises :class:`ConfigError` if matplotlib is not installed (checked
    before a run starts, so that it does not fail at the end).

    Args:
        option (str): The option that needs it, for the message.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(f"{option} needs matplotlib: pip install 'pyg-mspipe[plot]'")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_plots(summary: RunSummary, stats=None, folder: str | Path = ".") -> list[Path]:
    r"""Saves :obj:`loss.png` (training loss per epoch), :obj:`ap.png`
    (validation and test AP per epoch) and, if :obj:`stats` (the last
    pipelined epoch's :class:`~pyg_mspipe.pipeline.PipelineStats`) is given,
    :obj:`timeline.png` (its first 20 iterations); returns the paths.

    Args:
        summary (RunSummary): The run.
        stats (PipelineStats, optional): The pipeline's records.
            (default: :obj:`None`)
        folder (Path, optional): Where the PNGs go. (default: :obj:`"."`)
    """
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    epochs = [r.epoch for r in summary.epochs]
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r.loss for r in summary.epochs], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss per event")
    ax.set_title(f"{summary.config['model']} on {summary.config['data']}")
    paths.append(_save(plt, fig, folder / "loss.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for split in ("val", "test"):
        ax.plot(epochs, [getattr(r, split)["ap"] for r in summary.epochs], marker="o",
                label=f"{split} AP")
    ax.set_xlabel("epoch")
    ax.set_ylabel("average precision")
    ax.legend()
    ax.set_title(f"{summary.config['model']} on {summary.config['data']}")
    paths.append(_save(plt, fig, folder / "ap.png"))
    if stats is not None and stats.records:
        paths.append(save_timeline(stats, folder / "timeline.png"))
    return paths


def save_timeline(stats, path: str | Path) -> Path:
    r"""Saves the Gantt chart of the pipeline's first 20 iterations
    (:meth:`~pyg_mspipe.pipeline.PipelineStats.plot_timeline`) to :obj:`path`.

    Args:
        stats (PipelineStats): The pipeline's records.
        path (Path): The PNG.
    """
    plt = _pyplot()
    return _save(plt, stats.plot_timeline(), Path(path))


def _save(plt, fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
