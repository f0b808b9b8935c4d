r"""A prefetching drop-in for PyG's ``TemporalDataLoader``."""
from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe._streams import on_stream, record_stream
from pyg_mspipe.memory import TGNMemory
from pyg_mspipe.pipeline import MemoryPipeline, PipelineStats, StalenessMitigation
from pyg_mspipe.pipeline.scheduler import StalenessScheduler
from pyg_mspipe.prefetch import BackgroundIterator
from pyg_mspipe.sampler import LastNeighborLoader
from pyg_mspipe.validation import check_positive_int

__all__ = ["TemporalDataLoader"]

_AUTO = "auto"


def _validate_data(data: TemporalData):
    if not isinstance(data, TemporalData):
        raise TypeError(f"'data' must be a TemporalData (got {type(data).__name__})")
    for key in ("src", "dst", "t"):
        value = getattr(data, key, None)
        if not isinstance(value, Tensor) or value.dim() != 1:
            raise ValueError(f"'data.{key}' must be a one-dimensional tensor")
        if value.is_floating_point():
            raise TypeError(f"'data.{key}' must be an integer tensor (got {value.dtype})")
    num = data.src.numel()
    if data.dst.numel() != num or data.t.numel() != num:
        raise ValueError("'data.src', 'data.dst' and 'data.t' must have the same length")
    if num == 0:
        raise ValueError("'data' holds no events")
    if int(torch.minimum(data.src.min(), data.dst.min())) < 0:
        raise ValueError("'data' holds negative node ids")
    if num > 1 and bool((data.t[1:] < data.t[:-1]).any()):
        pos = int((data.t[1:] < data.t[:-1]).nonzero()[0, 0]) + 1
        raise ValueError(f"'data.t' is not sorted (t[{pos}] < t[{pos - 1}])")
    msg = getattr(data, "msg", None)
    if msg is not None:
        if msg.size(0) != num:
            raise ValueError(f"'data.msg' has {msg.size(0)} rows for {num} events")
        if msg.is_floating_point() and not bool(torch.isfinite(msg).all()):
            raise ValueError("'data.msg' holds NaN or infinite values")


class TemporalDataLoader(torch.utils.data.DataLoader):
    r"""Merges successive events of a :class:`~torch_geometric.data.TemporalData`
    into mini-batches, like :class:`torch_geometric.loader.TemporalDataLoader`
    (same batches: :obj:`src`, :obj:`dst`, :obj:`t`, :obj:`msg`, :obj:`neg_dst`,
    :obj:`n_id`), and prepares them ahead of time in a background thread.

    With :obj:`prefetch > 0`, a worker thread prepares up to :obj:`prefetch`
    batches ahead: slicing, negative sampling, :obj:`n_id`, the neighbourhood
    sample of a :class:`~pyg_mspipe.LastNeighborLoader` (run ahead on a private
    copy of its state that has seen exactly the batches before), with
    :obj:`edge_data` the times and features of the sampled edges
    (:obj:`batch.neighbor_t` and :obj:`batch.neighbor_msg`, the rows
    :obj:`edge_data.t[e_id]` and :obj:`edge_data.msg[e_id]` that PyG's example
    gathers on the training thread), and the copy to :obj:`device`. The
    training loop of PyG's ``examples/tgn.py`` runs unchanged: its
    :obj:`neighbor_loader(batch.n_id)` returns the prepared sample.

    Negatives are drawn from :obj:`generator`. Without one and with
    :obj:`prefetch=0`, they come from the global RNG exactly as in PyG; with
    :obj:`prefetch > 0`, each epoch seeds a private generator with the one draw
    of the global RNG that any :class:`torch.utils.data.DataLoader` iterator
    takes when iteration starts, so runs are reproducible from
    :func:`torch.manual_seed`, the prefetcher never races the training thread
    (dropout) for the global RNG, and with the same :obj:`generator` a run with
    prefetching is identical to one without.

    Args:
        data (TemporalData): The events (sorted by time).
        batch_size (int, optional): Events per batch. (default: :obj:`1`)
        neg_sampling_ratio (float, optional): Negative destinations per
            positive one, drawn uniformly from :obj:`[min(dst), max(dst)]`.
            (default: :obj:`0.0`)
        prefetch (int or str, optional): Batches prepared ahead in a
            background thread; :obj:`0` prepares them on demand, on the
            training thread. :obj:`"auto"` uses :obj:`2` when the background
            thread has room to run: a CUDA device is involved (the training
            thread then mostly waits on the GPU), or this process may use more
            CPU cores than PyTorch's intra-op threads; else :obj:`0` (with
            every core busy in the training thread's own operations, a
            background thread only slows it down: measured in
            ``docs/benchmarks.md``). (default: :obj:`"auto"`)
        neighbor_loader (LastNeighborLoader or str, optional): Neighbour loader
            whose samples are prepared ahead. :obj:`"auto"` takes the one live
            :class:`pyg_mspipe.LastNeighborLoader` if exactly one exists,
            :obj:`None` prepares none. (default: :obj:`"auto"`)
        memory (TGNMemory or str, optional): Memory whose
            :meth:`~pyg_mspipe.TGNMemory.update_state` work that depends on the
            events alone (validation, message layout) is prepared ahead.
            :obj:`"auto"` takes the one live :class:`pyg_mspipe.TGNMemory` if
            exactly one exists, :obj:`None` prepares none. (default: :obj:`"auto"`)
        device (torch.device, optional): Deliver batches (and prepared samples)
            on this device; on a GPU through pinned memory and non-blocking
            copies on a side stream, synchronised with the consumer's stream by
            events. (default: :obj:`None`: leave them where :obj:`data` is)
        generator (torch.Generator, optional): Generator for negatives.
            (default: :obj:`None`)
        edge_data (TemporalData, optional): The whole event stream that the
            neighbour loader's event ids index (PyG's ``data``, of which
            :obj:`data` is a split). If given, :obj:`batch.neighbor_t` and
            :obj:`batch.neighbor_msg` are gathered ahead. (default: :obj:`None`)
        staleness_bound (int, optional): Switches on the MSPipe pipeline
            (needs :obj:`memory`): each batch's memory fetch (the memory rows,
            last updates and pending messages :obj:`memory(n_id)` needs) is
            also prepared ahead, reading a state that may miss the updates of
            at most this many preceding iterations, and
            :meth:`~pyg_mspipe.TGNMemory.update_state` hands its write-back to
            the pipeline, which applies it to the current state in order (no
            update is lost). :obj:`0` gives exactly the sequential results.
            Per-iteration records in :attr:`stats`. :obj:`None` switches the
            pipeline off. With :obj:`prefetch="auto"` and the online
            schedule, where no CUDA device is involved and no CPU core is
            left for the pipeline's threads (they would only slow training
            down: ``docs/benchmarks.md``), the epoch runs sequentially on the
            training thread, every batch reading the committed memory
            (staleness 0, the scheduler's choice there; said in
            :obj:`stats.mode`). (default: :obj:`None`)
        schedule (str, optional): :obj:`"online"`: an online scheduler
            profiles the stages, enforces :math:`\min(s_{min}, s)` and delays
            each fetch to the latest moment that does not stall training, so
            the realised staleness is as low as the timing allows.
            :obj:`"fixed"`: every fetch exactly :obj:`staleness_bound`
            iterations stale (deterministic, whatever the timing; resumes
            bit-identically). See :class:`~pyg_mspipe.pipeline.StalenessScheduler`.
            (default: :obj:`"online"`)
        mitigation (bool or StalenessMitigation, optional): MSPipe's
            similarity-based staleness mitigation on each fetch (:obj:`True`:
            default parameters). (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch.utils.data.DataLoader` (only with :obj:`prefetch=0`
            for :obj:`num_workers > 0`).
    """

    def __init__(self, data: TemporalData, batch_size: int = 1,
                 neg_sampling_ratio: float = 0.0, *, prefetch: int | str = _AUTO,
                 neighbor_loader: LastNeighborLoader | str | None = _AUTO,
                 memory: TGNMemory | str | None = _AUTO,
                 device: torch.device | str | None = None,
                 generator: torch.Generator | None = None,
                 edge_data: TemporalData | None = None,
                 staleness_bound: int | None = None, schedule: str = "online",
                 mitigation: bool | StalenessMitigation = False, **kwargs):
        # Remove for PyTorch Lightning (as PyG does):
        kwargs.pop("dataset", None)
        kwargs.pop("collate_fn", None)
        kwargs.pop("shuffle", None)
        _validate_data(data)
        check_positive_int("batch_size", batch_size)
        if prefetch != _AUTO:
            check_positive_int("prefetch", prefetch, allow_zero=True)
        if isinstance(neg_sampling_ratio, bool) or not isinstance(neg_sampling_ratio,
                                                                   (int, float)):
            raise TypeError("'neg_sampling_ratio' must be a number")
        if not math.isfinite(neg_sampling_ratio) or neg_sampling_ratio < 0:
            raise ValueError(f"'neg_sampling_ratio' must be >= 0 (got {neg_sampling_ratio})")
        if prefetch != 0 and kwargs.get("num_workers", 0) > 0:
            raise ValueError("'prefetch > 0' prepares batches in a thread of this process; "
                             "it cannot be combined with 'num_workers > 0'")
        if not (neighbor_loader is None or neighbor_loader == _AUTO
                or isinstance(neighbor_loader, LastNeighborLoader)):
            raise TypeError("'neighbor_loader' must be a pyg_mspipe.LastNeighborLoader, "
                            f"'auto' or None (got {type(neighbor_loader).__name__})")
        if not (memory is None or memory == _AUTO or isinstance(memory, TGNMemory)):
            raise TypeError("'memory' must be a pyg_mspipe.TGNMemory, 'auto' or None "
                            f"(got {type(memory).__name__})")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError("'generator' must be a torch.Generator")
        if edge_data is not None:
            _validate_data(edge_data)
        if staleness_bound is not None:
            check_positive_int("staleness_bound", staleness_bound, allow_zero=True)
            if memory is None:
                raise ValueError("'staleness_bound' pipelines the memory: pass 'memory' "
                                 "(a pyg_mspipe.TGNMemory, or 'auto')")
            if prefetch == 0 or kwargs.get("num_workers", 0) > 0:
                raise ValueError("'staleness_bound' prepares batches in a background thread: "
                                 "it needs 'prefetch' >= 1 (or 'auto') and 'num_workers=0'")
        if schedule not in StalenessScheduler.MODES:
            raise ValueError(f"'schedule' must be one of {StalenessScheduler.MODES} "
                             f"(got {schedule!r})")
        if not isinstance(mitigation, (bool, StalenessMitigation)):
            raise TypeError("'mitigation' must be a bool or a StalenessMitigation "
                            f"(got {type(mitigation).__name__})")
        if mitigation is not False and staleness_bound is None:
            raise ValueError("'mitigation' corrects stale memory reads of the pipeline: "
                             "it needs 'staleness_bound'")

        self.data = data
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
        self.mitigation = (StalenessMitigation() if mitigation is True
                           else mitigation or None)
        self._pipeline: MemoryPipeline | None = None
        self._stats: PipelineStats | None = None
        self._position: dict | None = None  # where the current epoch stands
        self._resume: dict | None = None  # where the next epoch starts

        if neg_sampling_ratio > 0:
            self.min_dst = int(data.dst.min())
            self.max_dst = int(data.dst.max())

        if kwargs.get("drop_last", False) and len(data) % batch_size != 0:
            arange = range(0, len(data) - batch_size, batch_size)
        else:
            arange = range(0, len(data), batch_size)
        self._starts = arange
        super().__init__(arange, 1, shuffle=False, collate_fn=self, **kwargs)

    # -------------------------------------------------------------- batches
    def __call__(self, arange: list[int]) -> TemporalData:
        return self._make_batch(arange[0], self.neg_generator)

    def _make_batch(self, start: int, generator: torch.Generator | None) -> TemporalData:
        batch = self.data[start:start + self.events_per_batch]
        n_ids = [batch.src, batch.dst]
        if self.neg_sampling_ratio > 0:
            batch.neg_dst = torch.randint(
                low=self.min_dst, high=self.max_dst + 1,
                size=(round(self.neg_sampling_ratio * batch.dst.size(0)),),
                dtype=batch.dst.dtype, device=batch.dst.device, generator=generator)
            n_ids += [batch.neg_dst]
        batch.n_id = torch.cat(n_ids, dim=0).unique()
        return batch

    def _resolve_neighbor_loader(self) -> LastNeighborLoader | None:
        if self.neighbor_loader == _AUTO:
            return LastNeighborLoader.the_only_live_instance()
        return self.neighbor_loader

    def _resolve_memory(self) -> TGNMemory | None:
        if self.memory == _AUTO:
            return TGNMemory.the_only_live_instance()
        return self.memory

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
        # Whether background threads have room to run: a CUDA device is
        # involved (the training thread then mostly waits on the GPU), or
        # this process may use more cores than PyTorch's intra-op threads.
        devices = [self.device, self.data.src.device]
        for other in (self._resolve_neighbor_loader(), self._resolve_memory()):
            if other is not None:
                devices.append(other.device)
        if any(d is not None and d.type == "cuda" for d in devices):
            return True
        return _usable_cores() > torch.get_num_threads()

    def __iter__(self):
        prefetch = self.resolve_prefetch()
        resume, self._resume = self._resume, None
        if self.num_workers > 0:  # torch's multi-process loading, as in PyG
            if resume is not None:
                raise RuntimeError("resuming mid-epoch needs num_workers=0")
            it = super().__iter__()
            return it if self.device is None else (b.to(self.device) for b in it)
        if resume is None:
            # The one draw of the global RNG a torch DataLoader iterator takes
            # (its base seed), on this thread: the global RNG (dropout) sees
            # the same draws with and without prefetching, and as in PyG.
            seed = int(torch.empty((), dtype=torch.int64).random_())
            first = 0
        else:  # that draw was taken when the interrupted epoch started
            seed, first = resume["seed"], resume["next_batch"]
        generator = self.neg_generator
        if generator is None and prefetch > 0:
            generator = torch.Generator(device=self.data.dst.device).manual_seed(seed)
        if resume is not None and resume["generator"] is not None:
            if generator is None:
                raise RuntimeError("the checkpoint was taken with a negatives generator, "
                                   "this loader has none")
            generator.set_state(resume["generator"])
        self._position = {"seed": seed, "next_batch": first,
                          "generator": None if generator is None else generator.get_state()}
        if prefetch == 0:
            stats = None
            if self.staleness_bound is not None:  # (online schedule, no room for threads)
                memory = self._resolve_memory()
                if memory is not None and memory._pipeline is not None:
                    memory._pipeline.close()
                stats = self._stats = PipelineStats(self.staleness_bound)
                stats.mode = ("sequential: no CUDA device and no CPU core to spare for the "
                              "pipeline's threads (prefetch='auto'); every batch reads the "
                              "committed memory")
                stats.s_min = 0
            return _SyncEpoch(self, generator, first, stats)
        memory = self._resolve_memory()
        pipeline = None
        if self.staleness_bound is not None:
            pipeline = self._start_pipeline(memory, first, resume)
        return _PrefetchEpoch(self, generator, self._resolve_neighbor_loader(), memory,
                              prefetch, first, pipeline)

    def _start_pipeline(self, memory: TGNMemory | None, first: int,
                        resume: dict | None) -> MemoryPipeline:
        if memory is None:
            raise RuntimeError("'staleness_bound' needs the TGNMemory, but memory='auto' "
                               "found none or several live ones: pass 'memory'")
        if not memory.training:
            raise RuntimeError("the pipeline runs training epochs: call memory.train() "
                               "before iterating over a loader with 'staleness_bound'")
        if memory._pipeline is not None:  # an earlier epoch left unfinished
            memory._pipeline.close()
        if self.mitigation is not None and first == 0:
            self.mitigation.reset()
        state = None if resume is None else resume.get("pipeline")
        previous = self._pipeline
        self._pipeline = MemoryPipeline(memory, self.staleness_bound, len(self._starts),
                                        first=first, schedule=self.schedule,
                                        mitigation=self.mitigation, resume=state)
        if state is None and previous is not None:
            # the profile carries over: only the first epoch profiles from scratch
            self._pipeline.scheduler.load_state_dict(previous.scheduler.state_dict())
        self._stats = self._pipeline.stats
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
        the negatives generator after the batches delivered so far), or
        :obj:`None` fields between epochs. With :meth:`load_state_dict`, the
        next iteration resumes exactly there."""
        position = None if self._position is None else dict(self._position)
        pipeline = self._pipeline
        if position is not None and pipeline is not None and pipeline.memory._pipeline is pipeline:
            position["pipeline"] = pipeline.state_dict()
        return {"position": position}

    def load_state_dict(self, state: dict):
        r"""Makes the next iteration resume at a position saved by
        :meth:`state_dict` (a no-op for a position between epochs)."""
        position = state.get("position")
        if position is not None and not 0 <= position["next_batch"] <= len(self._starts):
            raise ValueError(f"checkpoint position {position['next_batch']} is outside this "
                             f"loader's {len(self._starts)} batches")
        self._resume = position

    def _delivered(self, index: int, generator_state: Tensor | None):
        if self._position is not None:
            self._position["next_batch"] = index + 1
            self._position["generator"] = generator_state

    def _finished(self):
        # The loop asked for a batch after the last one: the epoch is over
        # (a checkpoint taken now starts the next epoch from the beginning).
        self._position = None


class _SyncEpoch:
    r"""One epoch of a non-prefetching :class:`TemporalDataLoader`."""

    def __init__(self, loader: TemporalDataLoader, generator: torch.Generator | None,
                 first: int, stats: PipelineStats | None = None):
        self.loader = loader
        self.generator = generator
        self.index = first
        self.stats = stats
        self._begin: float | None = None

    def __iter__(self):
        return self

    def __next__(self) -> TemporalData:
        loader = self.loader
        if self.index >= len(loader._starts):
            if self.stats is not None and self._begin is not None:
                self.stats.span(self.index - 1, "train", self._begin, time.perf_counter())
                self._begin = None
            loader._finished()
            raise StopIteration
        batch = loader._make_batch(loader._starts[self.index], self.generator)
        if loader.device is not None:
            batch = batch.to(loader.device)
        loader._delivered(self.index,
                          None if self.generator is None else self.generator.get_state())
        if self.stats is not None:
            now = time.perf_counter()
            if self._begin is not None:
                self.stats.span(self.index - 1, "train", self._begin, now)
            self._begin = now
            record = self.stats.record(self.index)
            record.staleness, record.bound = 0, 0
        self.index += 1
        return batch

    def close(self):
        r"""Nothing to stop (for symmetry with the prefetching epoch)."""


class _PrefetchEpoch:
    r"""One epoch of a prefetching :class:`TemporalDataLoader`."""

    def __init__(self, loader: TemporalDataLoader, generator: torch.Generator,
                 neighbor_loader: LastNeighborLoader | None, memory: TGNMemory | None,
                 depth: int, first: int = 0, pipeline: MemoryPipeline | None = None):
        self.loader = loader
        self.pipeline = pipeline
        self.neighbor_loader = neighbor_loader
        self.memory = memory
        device = loader.device
        if device is None and neighbor_loader is not None:
            # Deliver batches where the neighbour loader lives, so that the
            # loop's `batch.to(device)` keeps the very tensors it was given.
            if neighbor_loader.device != loader.data.src.device:
                device = neighbor_loader.device
        self.device = device
        cuda = device is not None and device.type == "cuda"
        stream = torch.cuda.Stream(device) if cuda else None
        shadow, token = None, None
        if neighbor_loader is not None:
            shadow = neighbor_loader.clone()  # the state as iteration starts
            token = neighbor_loader.state_token()
        edge_data = loader.edge_data
        starts = list(loader._starts)

        def produce(emit):
            for index in range(first, len(starts)):
                begin = time.perf_counter()
                batch = loader._make_batch(starts[index], generator)
                gen_state = generator.get_state()  # for checkpoints
                prepared = None
                if shadow is not None:
                    expected = token[:2] + (shadow.cur_e_id,)
                    sample = shadow.sample(batch.n_id.to(shadow.device))
                    delta = shadow._insert(batch.src.to(shadow.device),
                                           batch.dst.to(shadow.device))
                sampled = time.perf_counter()
                if shadow is not None:
                    if edge_data is not None:
                        _gather_edges(batch, edge_data, sample[2])
                    prepared = (expected, sample, delta)
                event, plan = None, None
                if device is not None:
                    batch, prepared, event = _to_device(batch, prepared, device, stream)
                if memory is not None:
                    with on_stream(stream):
                        plan = memory.prepare_update(batch.src, batch.dst, batch.t, batch.msg)
                        if event is not None:
                            event.record(stream)
                if pipeline is not None:
                    end = time.perf_counter()
                    pipeline.stats.span(index, "sample", begin, sampled)
                    pipeline.stats.span(index, "feature", sampled, end)
                    n_id = batch.n_id if prepared is None else prepared[1][0]
                    pipeline.request(index, n_id, batch.t.max())
                emit((index, gen_state, batch, prepared, plan, event))

        self._it = BackgroundIterator(produce, depth=depth)

    def __iter__(self):
        return self

    def __next__(self) -> TemporalData:
        begin = time.perf_counter()
        try:
            item = next(self._it)
        except StopIteration:
            if self.pipeline is not None:
                self.pipeline.finish()
            self.loader._finished()
            raise
        except BaseException:
            if self.pipeline is not None:
                self.pipeline.close()
            raise
        index, gen_state, batch, prepared, plan, event = item
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            record_stream([[value for _, value in batch.items()],
                             None if prepared is None else prepared[1:], plan], current)
        if self.memory is not None:
            self.memory._offer_update(plan)
        if prepared is not None and self.neighbor_loader is not None:
            expected, sample, delta = prepared
            self.neighbor_loader._offer(batch.n_id, expected, sample, batch.src, batch.dst,
                                        delta)
        self.loader._delivered(index, gen_state)
        if self.pipeline is not None:
            self.pipeline.begin(index, time.perf_counter() - begin)
        return batch

    def close(self):
        r"""Stops the background threads (committing the memory write-backs
        already handed to the pipeline)."""
        self._it.close()
        if self.pipeline is not None:
            self.pipeline.close()

    def __del__(self):
        it = getattr(self, "_it", None)
        if it is not None:
            it.close()
        pipeline = getattr(self, "pipeline", None)
        if pipeline is not None:
            pipeline.close()


def _gather_edges(batch: TemporalData, edge_data: TemporalData, e_id: Tensor):
    e_id = e_id.to(edge_data.t.device)
    if e_id.numel() and int(e_id.max()) >= edge_data.num_events:
        raise IndexError(
            f"the neighbour loader sampled event id {int(e_id.max())}, but 'edge_data' holds "
            f"{edge_data.num_events} events: pass the whole stream whose rows its event ids "
            f"index (every event inserted once, in order, since reset_state())")
    batch.neighbor_t = edge_data.t.index_select(0, e_id)
    if getattr(edge_data, "msg", None) is not None:
        batch.neighbor_msg = edge_data.msg.index_select(0, e_id)


def _to_device(batch: TemporalData, prepared: Any, device: torch.device,
               stream: torch.cuda.Stream | None):
    if stream is None:
        batch = batch.to(device)
        if prepared is not None:
            expected, sample, delta = prepared
            prepared = (expected, tuple(x.to(device) for x in sample),
                        None if delta is None else tuple(x.to(device) for x in delta))
        return batch, prepared, None
    with torch.cuda.stream(stream):
        batch = batch.pin_memory().to(device, non_blocking=True)
        if prepared is not None:
            expected, sample, delta = prepared

            def move(xs):
                return None if xs is None else tuple(
                    x if x.is_cuda else x.pin_memory().to(device, non_blocking=True)
                    for x in xs)
            prepared = (expected, move(sample), move(delta))
        event = torch.cuda.Event()
        event.record(stream)
    return batch, prepared, event


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


