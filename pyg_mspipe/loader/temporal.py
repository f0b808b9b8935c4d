r"""A prefetching, pipelining drop-in for PyG's ``TemporalDataLoader``."""
from __future__ import annotations

import math
import os

import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe._validation import check_positive_int
from pyg_mspipe.loader._batches import EpochPosition, TemporalBatches, validate_data
from pyg_mspipe.loader._epochs import PrefetchEpoch, SequentialEpoch
from pyg_mspipe.nn._executor import install, installed, sequential, uninstall
from pyg_mspipe.nn.last_neighbor_loader import LastNeighborLoader
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.recent_neighbors import RecentNeighborSampler
from pyg_mspipe.pipeline import PipelineStats, StalenessCorrection
from pyg_mspipe.pipeline._memory_pipeline import MemoryPipeline
from pyg_mspipe.pipeline._scheduler import StalenessScheduler

__all__ = ["TemporalDataLoader"]

_AUTO = "auto"


def usable_cores() -> int:
    r"""CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class TemporalDataLoader(torch.utils.data.DataLoader):
    r"""Merges successive events of a :class:`~torch_geometric.data.TemporalData`
    into mini-batches, like :class:`torch_geometric.loader.TemporalDataLoader`
    (same batches), optionally prepared ahead in a background thread and,
    with :obj:`staleness_bound`, pipelined with the memory (MSPipe); PyG's
    training loop runs unchanged. With :obj:`prefetch=0` and no
    :obj:`generator`, negatives come from the
    global RNG exactly as in PyG; with prefetching, from a private generator
    seeded from it once per epoch (see :doc:`tutorial_drop_in`).

    Args:
        data (TemporalData): The events (sorted by time).
        batch_size (int, optional): Events per batch. (default: :obj:`1`)
        neg_sampling_ratio (float, optional): Negative destinations per
            positive one, drawn uniformly from :obj:`[min(dst), max(dst)]`.
            (default: :obj:`0.0`)
        prefetch (int or str, optional): Batches prepared ahead in a
            background thread (:obj:`0`: on demand). :obj:`"auto"`: :obj:`2`
            if a CUDA device is involved or a core is spare, and
            :obj:`num_workers=0`, else :obj:`0`. (default: :obj:`"auto"`)
        neighbor_loader (LastNeighborLoader, optional): Sampled ahead. A
            :class:`~pyg_mspipe.nn.RecentNeighborSampler` instead samples
            each batch's sources, destinations and negatives at their
            event's time into :obj:`batch.recent_nbr`, :obj:`recent_e_id`,
            :obj:`recent_t` and :obj:`recent_mask`. (default: :obj:`None`)
        memory (TGNMemory, optional): The memory the pipeline runs.
            (default: :obj:`None`)
        device (torch.device, optional): Deliver batches (and samples) there.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Generator for negatives.
            (default: :obj:`None`)
        neg_dst_candidates (torch.Tensor, optional): Node ids the negative
            destinations are drawn from, uniformly with replacement, e.g.
            the events' distinct destinations, as DyGLib. (default: :obj:`None`: every id in :obj:`[min(dst), max(dst)]`)
        edge_data (TemporalData, optional): The whole stream the neighbour
            loader's event ids index: :obj:`batch.neighbor_t` and
            :obj:`batch.neighbor_msg` are gathered ahead. (default: :obj:`None`)
        staleness_bound (int, optional): Switches on the MSPipe pipeline
            (needs :obj:`memory`): each batch's memory fetch may miss the
            write-backs of at most this many earlier iterations; no update is
            lost, and :obj:`0` gives the sequential result. With
            :obj:`prefetch="auto"`, the online schedule and no CUDA device or
            spare core, the epoch runs sequentially (:obj:`stats.mode`).
            (default: :obj:`None`)
        schedule (str, optional): :obj:`"online"` (profiled: staleness as low
            as the timing allows) or :obj:`"fixed"` (exactly
            :obj:`staleness_bound`; deterministic). (default: :obj:`"online"`)
        correction (bool or StalenessCorrection, optional): Refresh of each
            memory fetch just before use
            (:class:`~pyg_mspipe.pipeline.StalenessCorrection`; :obj:`True`:
            defaults). (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch.utils.data.DataLoader`.
    """

    def __init__(self, data: TemporalData, batch_size: int = 1,
                 neg_sampling_ratio: float = 0.0, *, prefetch: int | str = _AUTO,
                 neighbor_loader: LastNeighborLoader | RecentNeighborSampler | None = None,
                 memory: TGNMemory | None = None,
                 device: torch.device | str | None = None,
                 generator: torch.Generator | None = None,
                 neg_dst_candidates: Tensor | None = None,
                 edge_data: TemporalData | None = None,
                 staleness_bound: int | None = None, schedule: str = "online",
                 correction: bool | StalenessCorrection = False, **kwargs):
        # Remove for PyTorch Lightning (as PyG does):
        kwargs.pop("dataset", None)
        kwargs.pop("collate_fn", None)
        kwargs.pop("shuffle", None)
        if "mitigation" in kwargs:
            raise TypeError("'mitigation' was removed: MSPipe's similarity mitigation did "
                            "not reduce the staleness error (docs/staleness.md); use "
                            "'correction=True' to refresh stale reads")
        validate_data(data)
        check_positive_int("batch_size", batch_size)
        if prefetch != _AUTO:
            check_positive_int("prefetch", prefetch, allow_zero=True)
        if isinstance(neg_sampling_ratio, bool) or not isinstance(neg_sampling_ratio,
                                                                   (int, float)):
            raise TypeError("'neg_sampling_ratio' must be a number")
        if not math.isfinite(neg_sampling_ratio) or neg_sampling_ratio < 0:
            raise ValueError(f"'neg_sampling_ratio' must be >= 0 (got {neg_sampling_ratio})")
        workers = kwargs.get("num_workers", 0)
        if prefetch not in (0, _AUTO) and workers > 0:
            raise ValueError("'prefetch > 0' prepares batches in a thread of this process; "
                             "it cannot be combined with 'num_workers > 0'")
        if not (neighbor_loader is None
                or isinstance(neighbor_loader, (LastNeighborLoader, RecentNeighborSampler))):
            raise TypeError("'neighbor_loader' must be a pyg_mspipe.LastNeighborLoader, a "
                            "pyg_mspipe.nn.RecentNeighborSampler or None (got "
                            f"{type(neighbor_loader).__name__})")
        if not (memory is None or isinstance(memory, TGNMemory)):
            raise TypeError("'memory' must be a pyg_mspipe.TGNMemory or None "
                            f"(got {type(memory).__name__})")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError("'generator' must be a torch.Generator")
        if edge_data is not None:
            validate_data(edge_data, "edge_data")
        if staleness_bound is not None:
            check_positive_int("staleness_bound", staleness_bound, allow_zero=True)
            if prefetch == 0 or workers > 0:
                raise ValueError("'staleness_bound' prepares batches in a background thread: "
                                 "it needs 'prefetch' >= 1 (or 'auto') and 'num_workers=0'")
        if schedule not in StalenessScheduler.MODES:
            raise ValueError(f"'schedule' must be one of {StalenessScheduler.MODES} "
                             f"(got {schedule!r})")
        if not isinstance(correction, (bool, StalenessCorrection)):
            raise TypeError("'correction' must be a bool or a StalenessCorrection "
                            f"(got {type(correction).__name__})")
        if correction is not False and staleness_bound is None:
            raise ValueError("'correction' refreshes stale memory reads of the pipeline: "
                             "it needs 'staleness_bound'")
        if staleness_bound is not None and memory is None:
            raise ValueError("'staleness_bound' pipelines the memory: pass 'memory' "
                             "(a pyg_mspipe.TGNMemory)")

        self.data = data
        self.batches = TemporalBatches(data, batch_size, neg_sampling_ratio,
                                       kwargs.get("drop_last", False), neg_dst_candidates)
        self.events_per_batch = batch_size
        self.neg_sampling_ratio = neg_sampling_ratio
        self.prefetch = prefetch
        self.neighbor_loader = neighbor_loader
        self.memory = memory
        self.device = torch.device(device) if device is not None else None
        # (not `self.generator`: DataLoader.__init__ sets that one to None)
        self.neg_generator = generator
        self.edge_data = edge_data
        self.staleness_bound = staleness_bound
        self.schedule = schedule
        self.correction = (StalenessCorrection() if correction is True
                           else correction or None)
        self._pipeline: MemoryPipeline | None = None
        self._stats: PipelineStats | None = None
        self._position: EpochPosition | None = None  # of the current epoch
        self._resume: EpochPosition | None = None  # where the next epoch starts
        super().__init__(self.batches.starts, 1, shuffle=False, collate_fn=self, **kwargs)

    def __call__(self, arange: list[int]) -> TemporalData:
        # (collate_fn of torch's DataLoader: num_workers > 0)
        return self.batches.slice(arange[0], self.neg_generator)

    # ------------------------------------------------------------ iteration
    def resolve_prefetch(self) -> int:
        r"""The prefetch depth this loader uses (resolves :obj:`"auto"`)."""
        if self.staleness_bound is not None:
            if self.prefetch == _AUTO and self.schedule == "online" and not self._room():
                return 0  # the pipeline's threads would only slow training down
            # (a fixed schedule fetches up to `staleness_bound` batches ahead)
            depth = 2 if self.prefetch == _AUTO else self.prefetch
            return max(depth, self.staleness_bound if self.schedule == "fixed" else 1)
        if self.prefetch != _AUTO:
            return self.prefetch
        if self.num_workers > 0:
            return 0
        return 2 if self._room() else 0

    def _room(self) -> bool:
        # a CUDA device is involved, or a core to spare beyond the intra-op threads
        devices = [self.device, self.data.src.device]
        devices += [x.device for x in (self.neighbor_loader, self.memory) if x is not None]
        return (any(d is not None and d.type == "cuda" for d in devices)
                or usable_cores() > torch.get_num_threads())

    def __iter__(self):
        prefetch = self.resolve_prefetch()
        resume, self._resume = self._resume, None
        if self.num_workers > 0:  # torch's multi-process loading, as in PyG
            if resume is not None:
                raise RuntimeError("resuming mid-epoch needs num_workers=0")
            it = super().__iter__()
            return it if self.device is None else (b.to(self.device) for b in it)
        if resume is None:
            # the one draw of the global RNG any torch DataLoader iterator takes
            seed = int(torch.empty((), dtype=torch.int64).random_())
            position = EpochPosition(seed, 0)
        else:  # that draw was taken when the interrupted epoch started
            position = resume
        generator = self.neg_generator
        if generator is None and prefetch > 0:
            generator = torch.Generator(device=self.data.dst.device).manual_seed(position.seed)
        if position.generator is not None:
            if generator is None:
                raise RuntimeError("the checkpoint was taken with a negatives generator, "
                                   "this loader has none")
            generator.set_state(position.generator)
        position.generator = None if generator is None else generator.get_state()
        if prefetch == 0:
            stats = None
            if self.staleness_bound is not None:  # (online schedule, no room for threads)
                self._close_memory_pipeline()
                stats = self._stats = PipelineStats(self.staleness_bound)
                stats.mode = ("sequential: no CUDA device and no CPU core to spare for the "
                              "pipeline's threads (prefetch='auto'); every batch reads the "
                              "committed memory")
                stats.s_min = 0
            self._position = position
            return SequentialEpoch(self.batches, position, generator, self.device, stats)
        pipeline = None
        if self.staleness_bound is not None:
            pipeline = self._start_pipeline(position, resume)
        self._position = position
        return PrefetchEpoch(self.batches, position, generator, prefetch, device=self.device,
                             neighbor_loader=self.neighbor_loader, memory=self.memory,
                             edge_data=self.edge_data, pipeline=pipeline)

    def _close_memory_pipeline(self):
        # An epoch left unfinished (by this loader or another) still holds
        # the memory: commit its write-backs and stop it.
        pipeline = installed(self.memory) if self.memory is not None else None
        if pipeline is not None:
            pipeline.close()
            uninstall(self.memory, pipeline)

    def _start_pipeline(self, position: EpochPosition,
                        resume: EpochPosition | None) -> MemoryPipeline:
        if not self.memory.training:
            raise RuntimeError("the pipeline runs training epochs: call memory.train() "
                               "before iterating over a loader with 'staleness_bound'")
        self._close_memory_pipeline()
        first = position.next_batch
        state = None if resume is None else resume.pipeline
        previous = self._pipeline
        self._pipeline = MemoryPipeline(sequential(self.memory), self.memory,
                                        self.staleness_bound, len(self.batches),
                                        first=first, schedule=self.schedule,
                                        correction=self.correction, resume=state)
        install(self.memory, self._pipeline)
        if state is None and previous is not None:
            # the profile carries over: only the first epoch profiles from scratch
            self._pipeline.scheduler.load_state_dict(previous.scheduler.state_dict())
        self._stats = self._pipeline.stats
        return self._pipeline

    @property
    def pipeline(self) -> MemoryPipeline | None:
        r"""The pipeline of the current (or last) pipelined epoch."""
        return self._pipeline

    @property
    def stats(self) -> PipelineStats | None:
        r"""Per-iteration records of the current (or last) pipelined epoch:
        realised staleness, stage timings, stalls (:obj:`None` without
        :obj:`staleness_bound`). See :class:`~pyg_mspipe.pipeline.PipelineStats`."""
        return self._stats

    # ------------------------------------------------------------ position
    def state_dict(self) -> dict:
        r"""The loader's position in the current epoch (next batch, state of
        the negatives generator after the batches delivered so far, the
        pipeline's fetches), or :obj:`None` between epochs. With
        :meth:`load_state_dict`, the next iteration resumes exactly there."""
        if self._position is None or self._position.finished:
            return {"position": None}
        position = self._position.to_dict()
        pipeline = self._pipeline
        if pipeline is not None and installed(self.memory) is pipeline:
            position["pipeline"] = pipeline.state_dict()
        return {"position": position}

    def load_state_dict(self, state: dict):
        r"""Makes the next iteration resume at a position saved by
        :meth:`state_dict` (a no-op for a position between epochs)."""
        position = state.get("position")
        if position is not None and not 0 <= position["next_batch"] <= len(self.batches):
            raise ValueError(f"checkpoint position {position['next_batch']} is outside this "
                             f"loader's {len(self.batches)} batches")
        self._resume = None if position is None else EpochPosition.from_dict(position)
