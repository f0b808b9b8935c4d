r"""One epoch of a :class:`~pyg_mspipe.TemporalDataLoader`: on the training
thread, or prepared ahead in a background thread (with the pipeline)."""
from __future__ import annotations

import time
from contextlib import suppress
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe import _cuda
from pyg_mspipe._threads import BackgroundIterator
from pyg_mspipe.loader._batches import EpochPosition, TemporalBatches
from pyg_mspipe.loader._transfer import DeviceTransfer
from pyg_mspipe.nn._executor import uninstall
from pyg_mspipe.nn.last_neighbor_loader import (
    InsertDelta,
    LastNeighborLoader,
    NeighborSample,
    PreparedSample,
)
from pyg_mspipe.nn.recent_neighbors import (
    PREPARED,
    RecentNeighborSampler,
    batch_queries,
    read_nodes,
)
from pyg_mspipe.pipeline import PipelineStats
from pyg_mspipe.pipeline._memory_pipeline import FetchRequest, MemoryPipeline


class PreparedBatch(NamedTuple):
    r"""A batch and the work prepared for it in the background."""
    index: int
    generator_state: Tensor | None  #: negatives generator after this batch
    batch: TemporalData
    sample: PreparedSample | None  #: for the neighbour loader
    event: Any  #: CUDA event after all of it, or None


class SequentialEpoch:
    r"""An epoch whose batches are made on demand, on the training thread.

    Args:
        batches (TemporalBatches): The batches.
        position (EpochPosition): Where the epoch starts; kept up to date.
        generator (torch.Generator, optional): Negatives generator
            (:obj:`None`: the global RNG, as in PyG).
        device (torch.device, optional): Deliver batches there.
        stats (PipelineStats, optional): Records of a pipelined loader that
            runs this epoch sequentially (staleness 0).
    """

    def __init__(self, batches: TemporalBatches, position: EpochPosition,
                 generator: torch.Generator | None = None,
                 device: torch.device | None = None, stats: PipelineStats | None = None):
        self.batches = batches
        self.position = position
        self.generator = generator
        self.device = device
        self.stats = stats
        self.index = position.next_batch
        self._begin: float | None = None

    def __iter__(self):
        return self

    def __next__(self) -> TemporalData:
        if self.index >= len(self.batches):
            if self.stats is not None and self._begin is not None:
                self.stats.span(self.index - 1, "train", self._begin, time.perf_counter())
                self._begin = None
            self.position.finished = True
            raise StopIteration
        batch = self.batches.make(self.index, self.generator)
        if self.device is not None:
            batch = batch.to(self.device)
        self.position.delivered(self.index, None if self.generator is None
                                else self.generator.get_state())
        if self.stats is not None:
            now = time.perf_counter()
            if self._begin is not None:
                self.stats.span(self.index - 1, "train", self._begin, now)
            self._begin = now
            self.stats.update(self.index, staleness=0, bound=0)
        self.index += 1
        return batch

    def close(self):
        r"""Nothing to stop (for symmetry with :class:`PrefetchEpoch`)."""


class PrefetchEpoch:
    r"""An epoch whose batches, neighbour samples and memory-fetch requests a
    background thread prepares ahead (see ``docs/architecture.md``); its
    pipeline is closed and uninstalled when the epoch ends or is abandoned.

    Args:
        batches (TemporalBatches): The batches.
        position (EpochPosition): Where the epoch starts; kept up to date.
        generator (torch.Generator): Negatives generator.
        depth (int): Batches prepared ahead.
        device (torch.device, optional): Deliver batches there.
        neighbor_loader (LastNeighborLoader or RecentNeighborSampler,
            optional): Sampled ahead.
        memory (TGNMemory, optional): The memory :obj:`pipeline` runs.
        edge_data (TemporalData, optional): The stream the sample's event ids
            index (:obj:`batch.neighbor_t`, :obj:`batch.neighbor_msg`).
        pipeline (MemoryPipeline, optional): Told each batch's fetch.
    """

    def __init__(self, batches: TemporalBatches, position: EpochPosition,
                 generator: torch.Generator, depth: int, *,
                 device: torch.device | None = None,
                 neighbor_loader: LastNeighborLoader | RecentNeighborSampler | None = None,
                 memory=None,
                 edge_data: TemporalData | None = None,
                 pipeline: MemoryPipeline | None = None):
        self.position = position
        self.pipeline = pipeline
        self.neighbor_loader = neighbor_loader
        self.memory = memory
        if device is None:
            # Deliver batches where the neighbour loader (or the data) lives,
            # so that the loop's `batch.to(device)` keeps the very tensors.
            device = (neighbor_loader.device if neighbor_loader is not None
                      else batches.data.src.device)
        self.device = device
        transfer = DeviceTransfer(device)
        shadow = recent = None
        if isinstance(neighbor_loader, RecentNeighborSampler):
            recent = neighbor_loader  # (no state: its samples are always good)
            self.neighbor_loader = None
        elif neighbor_loader is not None:
            shadow = neighbor_loader._clone()  # the state as iteration starts
            token = neighbor_loader._state_token()

        first = position.next_batch

        def produce(emit):
            for index in range(first, len(batches)):
                begin = time.perf_counter()
                batch = batches.make(index, generator)
                gen_state = generator.get_state()  # for checkpoints
                sample = None
                if shadow is not None:
                    expected = token[:2] + (shadow.cur_e_id,)
                    nodes = shadow.sample(batch.n_id.to(shadow.device))
                    src, dst = batches.insert_events(batch)
                    delta = shadow._insert_delta(src.to(shadow.device), dst.to(shadow.device))
                    if edge_data is not None:
                        gather_edges(batch, edge_data, nodes.e_id)
                    sample = PreparedSample(batch.n_id, expected, nodes, src, dst, delta)
                if recent is not None:
                    node, t = batch_queries(batch)
                    nb = recent.dense(node.to(recent.device), t.to(recent.device))
                    for name, x in zip(PREPARED, nb):
                        setattr(batch, name, x)
                sampled = time.perf_counter()
                with transfer.context():  # everything below on the copy stream (if any)
                    batch, sample = _move(batch, sample, transfer, batches)
                    n_id = batch.n_id if sample is None else sample.sample.n_id
                    if recent is not None:  # what the loop's embedding reads
                        n_id = read_nodes(batch_queries(batch)[0], nb._make(
                            getattr(batch, name) for name in PREPARED))[0]
                    event = transfer.done()
                if pipeline is not None:
                    end = time.perf_counter()
                    pipeline.stats.span(index, "sample", begin, sampled)
                    pipeline.stats.span(index, "feature", sampled, end)
                    pipeline.request(index, FetchRequest(n_id, event))
                emit(PreparedBatch(index, gen_state, batch, sample, event))

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
                uninstall(self.memory, self.pipeline)
            self.position.finished = True
            raise
        except BaseException:
            self._close_pipeline()
            raise
        current = _cuda.current_stream(self.device)
        _cuda.wait_event(current, item.event)
        _cuda.record_stream(item, current)
        if self.neighbor_loader is not None:
            self.neighbor_loader._offer(item.sample)
        self.position.delivered(item.index, item.generator_state)
        if self.pipeline is not None:
            self.pipeline.begin(item.index, time.perf_counter() - begin)
        return item.batch

    def close(self):
        r"""Stops the background threads (committing the memory write-backs
        already handed to the pipeline)."""
        try:
            self._it.close()
        finally:
            self._close_pipeline()

    def _close_pipeline(self):
        # (the memory keeps a pipeline that failed to stop: it refuses use)
        if self.pipeline is not None:
            self.pipeline.close()
            uninstall(self.memory, self.pipeline)

    def __del__(self):
        # (garbage collection: stop the threads, never raise)
        with suppress(Exception):
            it = getattr(self, "_it", None)
            if it is not None:
                it.close()
        with suppress(Exception):
            if getattr(self, "pipeline", None) is not None:
                self._close_pipeline()


def gather_edges(batch: TemporalData, edge_data: TemporalData, e_id: Tensor):
    r"""Sets :obj:`batch.neighbor_t` and :obj:`batch.neighbor_msg`: the rows
    of :obj:`edge_data` at the sampled event ids :obj:`e_id`."""
    e_id = e_id.to(edge_data.t.device)
    if e_id.numel() and int(e_id.max()) >= edge_data.num_events:
        raise IndexError(
            f"the neighbour loader sampled event id {int(e_id.max())}, but 'edge_data' holds "
            f"{edge_data.num_events} events: pass the whole stream whose rows its event ids "
            f"index (every event inserted once, in order, since reset_state())")
    batch.neighbor_t = edge_data.t.index_select(0, e_id)
    if getattr(edge_data, "msg", None) is not None:
        batch.neighbor_msg = edge_data.msg.index_select(0, e_id)


def _move(batch: TemporalData, sample: PreparedSample | None, transfer: DeviceTransfer,
          batches: TemporalBatches) -> tuple[TemporalData, PreparedSample | None]:
    batch = batch.apply(transfer.move)
    if sample is not None:
        delta = sample.delta
        src, dst = batches.insert_events(batch)
        sample = sample._replace(
            n_id=batch.n_id, src=src, dst=dst,
            sample=NeighborSample(*(transfer.move(x) for x in sample.sample)),
            delta=None if delta is None else InsertDelta(*(transfer.move(x) for x in delta)))
    return batch, sample
