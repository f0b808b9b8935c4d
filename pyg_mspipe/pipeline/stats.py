r"""Per-iteration records of a pipelined epoch: realised staleness, stage
timings, stalls; a summary and a timeline (Gantt) plot."""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["PipelineStats", "IterationRecord"]

#: The five stages of MSPipe, in order.
STAGES = ("sample", "feature", "fetch", "train", "write")


@dataclass
class IterationRecord:
    r"""What happened in one iteration of a pipelined epoch.

    Attributes:
        index (int): The batch index in its epoch.
        staleness (int or None): Earlier iterations whose write-back was not
            yet committed when this iteration's memory was read.
        bound (int or None): The staleness bound in force for its fetch.
        stall (float): Seconds the training thread waited for this
            iteration's batch or memory fetch.
        refreshed_staleness (int or None): The staleness of what training
            read after the fetch was refreshed
            (:class:`~pyg_mspipe.pipeline.StalenessCorrection`; :obj:`None`
            without one).
        refreshed_rows (int or None): Fetched rows the refresh read again.
        fallback (bool): Whether :obj:`memory(n_id)` asked for other nodes than
            the prepared ones, so the memory was read from the committed state
            on the training thread (staleness 0).
        spans (dict): Stage name to :obj:`(begin, end)` in seconds since the
            epoch started.
    """
    index: int
    staleness: int | None = None
    bound: int | None = None
    stall: float = 0.0
    refreshed_staleness: int | None = None
    refreshed_rows: int | None = None
    fallback: bool = False
    spans: dict = field(default_factory=dict)


class PipelineStats:
    r"""Records of a pipelined epoch (see :class:`IterationRecord`), written
    by the pipeline's threads, read with :meth:`summary`, :meth:`histogram`
    and :meth:`plot_timeline`.

    Args:
        staleness_bound (int): The user's staleness bound.
    """

    def __init__(self, staleness_bound: int):
        self.staleness_bound = staleness_bound
        self.origin = time.perf_counter()
        self.s_min: int | None = None
        #: How the epoch ran: "pipelined", or why it ran sequentially.
        self.mode = "pipelined"
        self.taus: dict[str, float] = {}
        self._records: dict[int, IterationRecord] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        r"""Seconds since the epoch started."""
        return time.perf_counter() - self.origin

    def record(self, index: int) -> IterationRecord:
        r"""The record of iteration :obj:`index` (created if new); change it
        with :meth:`update` while the epoch runs."""
        with self._lock:
            return self._get(index)

    def _get(self, index: int) -> IterationRecord:
        # (under the lock)
        rec = self._records.get(index)
        if rec is None:
            rec = self._records[index] = IterationRecord(index)
        return rec

    def span(self, index: int, stage: str, begin: float, end: float):
        r"""Records that :obj:`stage` of iteration :obj:`index` ran from
        :obj:`begin` to :obj:`end` (:func:`time.perf_counter` values)."""
        with self._lock:
            self._get(index).spans[stage] = (begin - self.origin, end - self.origin)

    def update(self, index: int, stall: float = 0.0, **fields):
        r"""Adds :obj:`stall` seconds to iteration :obj:`index`'s stall and
        sets the other :class:`IterationRecord` fields given (the pipeline's
        threads write records only through :meth:`span` and this method, both
        under the records' lock)."""
        with self._lock:
            rec = self._get(index)
            rec.stall += stall
            for name, value in fields.items():
                setattr(rec, name, value)

    @property
    def records(self) -> list[IterationRecord]:
        r"""The records, in iteration order."""
        with self._lock:
            return [self._records[i] for i in sorted(self._records)]

    def staleness(self) -> list[int]:
        r"""The realised staleness of every fetched iteration, in order."""
        return [r.staleness for r in self.records if r.staleness is not None]

    def refreshed_staleness(self) -> list[int]:
        r"""The realised staleness after refresh of every refreshed iteration,
        in order (empty without a correction)."""
        return [r.refreshed_staleness for r in self.records
                if r.refreshed_staleness is not None]

    def histogram(self) -> dict[int, int]:
        r"""Realised staleness -> number of iterations."""
        return dict(sorted(Counter(self.staleness()).items()))

    def summary(self) -> dict:
        r"""Iterations, realised staleness (max, mean, histogram), the bound
        and the scheduler's :obj:`s_min`, with a correction the realised
        staleness after refresh (max, mean, histogram; :obj:`None` without
        one) and the rows read again, total stall time, mean stage times,
        and the share of memory fetch and write-back time hidden behind
        training (not spent by the training thread waiting)."""
        records = self.records
        stal = [r.staleness for r in records if r.staleness is not None]
        stage_time = {s: 0.0 for s in STAGES}
        for r in records:
            for s, (b, e) in r.spans.items():
                stage_time[s] += e - b
        fresh = [r.refreshed_staleness for r in records if r.refreshed_staleness is not None]
        stall = sum(r.stall for r in records)
        memory_io = stage_time["fetch"] + stage_time["write"]
        return {
            "iterations": len(records),
            "mode": self.mode,
            "staleness_bound": self.staleness_bound,
            "s_min": self.s_min,
            "max_staleness": max(stal, default=0),
            "mean_staleness": sum(stal) / len(stal) if stal else 0.0,
            "histogram": dict(sorted(Counter(stal).items())),
            "max_refreshed_staleness": max(fresh) if fresh else None,
            "mean_refreshed_staleness": sum(fresh) / len(fresh) if fresh else None,
            "refreshed_histogram": dict(sorted(Counter(fresh).items())) if fresh else None,
            "refreshed_rows": sum(r.refreshed_rows or 0 for r in records),
            "stall_seconds": stall,
            "fallbacks": sum(r.fallback for r in records),
            "stage_seconds": stage_time,
            "hidden_share": (max(0.0, 1.0 - stall / memory_io) if memory_io > 0 else None),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (f"PipelineStats(iterations={s['iterations']}, bound={s['staleness_bound']}, "
                f"s_min={s['s_min']}, max_staleness={s['max_staleness']}, "
                f"mean_staleness={s['mean_staleness']:.2f}, stall={s['stall_seconds']:.3f}s)")

    def plot_timeline(self, path: str | None = None, first: int = 0, count: int = 20):
        r"""Draws a Gantt chart of the five stages of iterations
        :obj:`first` to :obj:`first + count - 1` (needs matplotlib) and saves it
        to :obj:`path` (PNG) if given. Returns the figure.

        Args:
            path (str, optional): Where to save the PNG. (default: :obj:`None`)
            first (int, optional): First iteration drawn. (default: :obj:`0`)
            count (int, optional): Number of iterations. (default: :obj:`20`)
        """
        try:
            import matplotlib
            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("plot_timeline needs matplotlib: pip install "
                              "'pyg-mspipe[plot]'") from exc
        records = [r for r in self.records if first <= r.index < first + count]
        colors = dict(zip(STAGES, ("#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#b07aa1")))
        fig, ax = plt.subplots(figsize=(12, 0.5 + 0.45 * len(STAGES)))
        rows = {s: len(STAGES) - 1 - k for k, s in enumerate(STAGES)}
        ends = [e for r in records for _, e in r.spans.values()]
        begins = [b for r in records for b, _ in r.spans.values()]
        # (short stages drawn at least 0.2% of the range wide, to be seen)
        least = 0.002 * (max(ends) - min(begins)) if ends else 0.0
        for r in records:
            for stage, (b, e) in r.spans.items():
                ax.broken_barh([(b * 1e3, max(e - b, least) * 1e3)], (rows[stage] - 0.4, 0.8),
                               facecolors=colors[stage], edgecolor="white", linewidth=0.5)
                if e - b > 0:
                    ax.text((b + e) / 2 * 1e3, rows[stage], str(r.index), ha="center",
                            va="center", fontsize=6, color="white")
        ax.set_yticks([rows[s] for s in STAGES])
        ax.set_yticklabels(STAGES)
        ax.set_xlabel("time since epoch start (ms)")
        summary = self.summary()
        ax.set_title(f"staleness bound {self.staleness_bound}, s_min {self.s_min}, "
                     f"realised max {summary['max_staleness']}, "
                     f"mean {summary['mean_staleness']:.2f}")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig
