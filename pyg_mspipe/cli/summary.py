r"""What a run reports: per-epoch records, the stdout table, the final
summary and the JSON summary."""
from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyg_mspipe.engine.stopping import improves

__all__ = ["EpochRecord", "RunSummary", "table_header", "table_row", "summary_lines",
           "final_metrics", "aggregate", "runs_lines", "runs_to_dict", "write_json",
           "JSON_FORMAT"]

#: The ``format`` field of the JSON summary.
JSON_FORMAT = "pyg-mspipe-train/1"


@dataclass
class EpochRecord:
    r"""One epoch's results.

    Args:
        epoch (int): The epoch (1-based).
        loss (float): Mean training loss per event.
        train_seconds (float): Seconds of the training pass.
        events_per_second (float): Training events per second.
        val (dict): Validation metrics by name.
        test (dict): Test metrics by name.
        eval_seconds (float): Seconds of the evaluation passes.
        pipeline (dict, optional): The pipeline's summary of the epoch
            (:meth:`~pyg_mspipe.pipeline.PipelineStats.summary`).
        val_new (dict, optional): Validation metrics of the events with a new
            node (inductive split).
        test_new (dict, optional): The same for the test events.
    """
    epoch: int
    loss: float
    train_seconds: float
    events_per_second: float
    val: dict
    test: dict
    eval_seconds: float
    pipeline: dict | None = None
    val_new: dict | None = None
    test_new: dict | None = None

    def parts(self) -> dict[str, dict]:
        r"""The evaluated parts with metrics, by name."""
        parts = {"val": self.val, "test": self.test, "val_new": self.val_new,
                 "test_new": self.test_new}
        return {k: v for k, v in parts.items() if v is not None}


@dataclass
class RunSummary:
    r"""A whole run: its configuration, data, evaluation protocol, epochs
    and total time; :meth:`best` is the best validation epoch by the
    protocol's first metric. With early stopping, :obj:`early_stopping`
    holds its patience, the epoch it stopped after (:obj:`None` if it ran
    every epoch) and the test metrics measured again after the best epoch's
    state was restored (:obj:`restored`)."""
    config: dict
    data: dict
    eval_protocol: dict
    epochs: list[EpochRecord] = field(default_factory=list)
    total_seconds: float = 0.0
    resumed: bool = False
    early_stopping: dict | None = None

    @property
    def selection_metric(self) -> str:
        r"""The metric that selects the best epoch (the protocol's first)."""
        return self.eval_protocol["metrics"][0]

    def best(self) -> EpochRecord | None:
        r"""The epoch of the best validation score
        (:func:`~pyg_mspipe.engine.stopping.improves`: the first of equals)."""
        best = None
        for record in self.epochs:
            if best is None or improves(record.val[self.selection_metric],
                                        best.val[self.selection_metric]):
                best = record
        return best

    def to_dict(self) -> dict:
        r"""The JSON summary (see ``docs/cli.md``)."""
        best = self.best()
        last = self.epochs[-1] if self.epochs else None
        return {
            "format": JSON_FORMAT,
            "config": self.config,
            "data": self.data,
            "eval_protocol": self.eval_protocol,
            "epochs": [asdict(r) for r in self.epochs],
            "best": None if best is None else {"epoch": best.epoch,
                                               "selected_by": f"val {self.selection_metric}",
                                               **best.parts()},
            "total_seconds": self.total_seconds,
            "resumed": self.resumed,
            "pipeline": None if last is None else last.pipeline,
            "early_stopping": self.early_stopping,
        }


def _columns(metrics, parts) -> list[str]:
    return [f"{part} {metric}" for part in parts for metric in metrics]


def table_header(metrics=("ap", "auc"), parts=("val", "test")) -> str:
    r"""The header line of the per-epoch table."""
    cells = [f"{c:>{max(len(c), 6)}}" for c in _columns(metrics, parts)]
    return f"{'epoch':>5}  {'loss':>7}  {'train s':>7}  {'events/s':>8}  " + \
        "  ".join(cells) + "  staleness"


def table_row(r: EpochRecord, metrics=("ap", "auc")) -> str:
    r"""One epoch's line of the table."""
    staleness = "-" if r.pipeline is None else f"{r.pipeline['mean_staleness']:.2f}"
    cells = [f"{values[m]:>{max(len(part) + len(m) + 1, 6)}.4f}"
             for part, values in r.parts().items() for m in metrics]
    return (f"{r.epoch:>5}  {r.loss:7.4f}  {r.train_seconds:7.1f}  "
            f"{r.events_per_second:8.0f}  " + "  ".join(cells) + f"  {staleness:>9}")


def summary_lines(summary: RunSummary) -> list[str]:
    r"""The final summary: best validation epoch and its test metrics,
    total time, the last epoch's pipeline summary."""
    best = summary.best()
    lines = []
    stopping = summary.early_stopping
    if stopping is not None:
        stopped = stopping["stopped_after"]
        lines.append(f"early stopping (patience {stopping['patience']}): "
                     + ("ran every epoch" if stopped is None else
                        f"stopped after epoch {stopped}")
                     + f"; best epoch {best.epoch} restored and tested again")
    if best is not None:
        metric = summary.selection_metric
        parts = final_metrics(summary)
        for part in ("test", "test_new"):
            values = parts.get(part)
            if values is not None:
                scores = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
                lines.append(f"best val epoch {best.epoch} (val {metric} "
                             f"{best.val[metric]:.4f}): {part} {scores}")
    lines.append(f"total time {summary.total_seconds:.1f}s over {len(summary.epochs)} "
                 f"epoch(s)" + (" (resumed)" if summary.resumed else ""))
    last = summary.epochs[-1].pipeline if summary.epochs else None
    if last is not None:
        hidden = last["hidden_share"]
        lines.append(f"pipeline ({last['mode']}): bound {last['staleness_bound']}, s_min "
                     f"{last['s_min']}, realised staleness max {last['max_staleness']} mean "
                     f"{last['mean_staleness']:.2f}, stall {last['stall_seconds']:.2f}s, "
                     f"memory I/O hidden "
                     + ("-" if hidden is None else f"{100 * hidden:.0f}%"))
    return lines


def final_metrics(summary: RunSummary) -> dict[str, dict]:
    r"""What a run reports, by part: the best validation epoch's
    :obj:`val` (and :obj:`val_new`) and its :obj:`test` (and
    :obj:`test_new`), those measured after restoring the best epoch's
    state when it stopped early."""
    best = summary.best()
    if best is None:
        return {}
    parts = best.parts()
    if summary.early_stopping is not None:
        parts.update(summary.early_stopping["restored"])
    return parts


def aggregate(summaries: list[RunSummary]) -> dict[str, dict]:
    r"""Mean and sample standard deviation (:obj:`ddof=1`, as DyGLib
    reports; :obj:`None` for one run) over runs of :func:`final_metrics`,
    by part and metric, with the values of each run."""
    out = {}
    finals = [final_metrics(s) for s in summaries]
    for part, metrics in finals[0].items():
        out[part] = {}
        for metric in metrics:
            values = [f[part][metric] for f in finals]
            std = statistics.stdev(values) if len(values) > 1 else None
            out[part][metric] = {"mean": statistics.fmean(values), "std": std,
                                 "values": values}
    return out


def runs_lines(summaries: list[RunSummary]) -> list[str]:
    r"""The final summary of several runs: per part, each metric's mean ±
    standard deviation (:func:`aggregate`)."""
    seeds = [s.config["seed"] for s in summaries]
    lines = [f"{len(summaries)} runs (seeds {', '.join(map(str, seeds))}): mean ± std "
             f"(ddof=1) of each run's best val epoch ({summaries[0].selection_metric})"
             + (", restored" if summaries[0].early_stopping is not None else "")]
    for part, metrics in aggregate(summaries).items():
        cells = "  ".join(f"{m} {_pm(v)}" for m, v in metrics.items())
        lines.append(f"  {part} {cells}")
    return lines


def _pm(value: dict) -> str:
    std = value["std"]
    return f"{value['mean']:.4f} ± " + ("nan" if std is None or math.isnan(std)
                                         else f"{std:.4f}")


def runs_to_dict(summaries: list[RunSummary]) -> dict:
    r"""The JSON summary of several runs (see ``docs/cli.md``): the first
    run's configuration (its seed the first), data and protocol, each run's
    :meth:`RunSummary.to_dict` without those (with its :obj:`seed`), and
    :func:`aggregate`."""
    first = summaries[0].to_dict()
    runs = []
    for summary in summaries:
        entry = summary.to_dict()
        for key in ("format", "config", "data", "eval_protocol"):
            entry.pop(key)
        runs.append({"seed": summary.config["seed"], **entry})
    return {"format": JSON_FORMAT, "config": first["config"], "data": first["data"],
            "eval_protocol": first["eval_protocol"], "runs": runs,
            "aggregate": aggregate(summaries),
            "total_seconds": sum(s.total_seconds for s in summaries)}


def write_json(summary: RunSummary | dict, path: str | os.PathLike):
    r"""Writes :meth:`RunSummary.to_dict` (or a dictionary such as
    :func:`runs_to_dict`'s) to :obj:`path` (via a temporary file renamed
    into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    data = summary if isinstance(summary, dict) else summary.to_dict()
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(value):
    if hasattr(value, "item"):  # tensors, numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
