r"""Data-parallel training of a memory-based TGN with replicated memory, for
a user's own loop."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.checkpoint import load_checkpoint, save_checkpoint
from pyg_mspipe.distributed._gradients import (
    all_reduce_gradients,
    broadcast_parameters,
    unique_parameters,
)
from pyg_mspipe.distributed.context import DistributedContext
from pyg_mspipe.distributed.exchange import WriteBackExchange
from pyg_mspipe.distributed.loader import ShareLoader
from pyg_mspipe.nn._executor import installed

__all__ = ["DistributedTraining"]


class DistributedTraining:
    r"""Wraps a memory, the other trained modules and the loader of a
    training loop for data-parallel training on :mod:`torch.distributed`
    with a replicated memory: every replica ends each iteration equal to
    what one process computes from the same global batch. Construction
    broadcasts rank 0's parameters and sets a
    :class:`~pyg_mspipe.distributed.WriteBackExchange` as the memory's
    committer; :meth:`close` removes it. Every rank must hold the same
    :obj:`data` and start from the same state. PyG's loop runs with three
    changes (see :doc:`distributed`, "Your own loop").

    Args:
        context (DistributedContext): The run.
        memory (TGNMemory): The memory (replicated).
        modules (list): The other trained modules (embedding, predictor).
        broadcast (bool, optional): Copy rank 0's parameters to every rank.
            (default: :obj:`True`)
    """

    def __init__(self, context: DistributedContext, memory, modules: Sequence[torch.nn.Module],
                 *, broadcast: bool = True):
        if installed(memory) is not None:
            raise RuntimeError("DistributedTraining: the memory has a pipeline attached; "
                               "wrap it between epochs")
        self.context = context
        self.memory = memory
        self.modules = list(modules)
        self.parameters = unique_parameters([memory, *self.modules])
        self.exchange = WriteBackExchange(memory, context)
        if broadcast:
            broadcast_parameters(self.parameters, context)
        memory.set_committer(self.exchange)

    @property
    def rank(self) -> int:
        return self.context.rank

    @property
    def world_size(self) -> int:
        return self.context.world_size

    def loader(self, data: TemporalData, batch_size: int, neg_sampling_ratio: float = 0.0,
               *, seed: int = 0, **kwargs) -> ShareLoader:
        r"""A :class:`~pyg_mspipe.distributed.ShareLoader` for this rank: the
        :obj:`batch_size` is the global batch's, the negatives come from a
        generator seeded with :obj:`seed` on every rank. Other arguments
        are :class:`~pyg_mspipe.TemporalDataLoader`'s (:obj:`memory=`,
        :obj:`neighbor_loader=`, :obj:`staleness_bound=`, ...)."""
        generator = torch.Generator(device=data.dst.device).manual_seed(seed)
        return ShareLoader(data, batch_size, neg_sampling_ratio, rank=self.rank,
                           world_size=self.world_size, generator=generator, **kwargs)

    def reduce_gradients(self, batch: TemporalData, loss: float | None = None) -> float:
        r"""After :obj:`loss.backward()` on a share (with the share's *mean*
        loss): every rank's gradients become those of the global batch's
        mean loss (:func:`~pyg_mspipe.distributed.all_reduce_gradients`,
        each share weighted by its fraction of the events). Returns the
        global batch's mean loss, given this share's :obj:`loss` (in the
        same all-reduce; :obj:`None` for an empty share)."""
        total = batch.global_src.numel()
        weight = batch.num_events / total if total else 0.0
        share = 0.0 if loss is None else float(loss) * weight
        return all_reduce_gradients(self.parameters, weight, self.context, [share])[0]

    def barrier(self):
        r"""The monitored barrier of :meth:`DistributedContext.barrier` (at
        epoch boundaries)."""
        self.context.barrier()

    def save_checkpoint(self, path: str | os.PathLike, extra=None, **objects):
        r""":func:`~pyg_mspipe.save_checkpoint` on rank 0 only, then a
        barrier. Any world size that divides the global batch resumes it
        with :meth:`load_checkpoint`."""
        if self.rank == 0:
            save_checkpoint(path, extra, **objects)
        self.barrier()

    def load_checkpoint(self, path: str | os.PathLike, **objects):
        r""":func:`~pyg_mspipe.load_checkpoint` on every rank (RNG states
        included), then :meth:`check_replicas`."""
        extra = load_checkpoint(path, **objects)
        self.check_replicas()
        return extra

    @torch.no_grad()
    def check_replicas(self):
        r"""Raises :class:`RuntimeError` unless every rank holds the same
        parameters and memory state (compared through one checksum
        all-gather; for tests and after loading a checkpoint)."""
        state = self.memory.state
        values = [p.detach().double().sum() for p in self.parameters]
        values += [state.memory.double().sum(), state.last_update.double().sum(),
                   state.store.kept_t.double().sum()]
        local = torch.stack([v.cpu() for v in values])
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        self.context.run("all_gather of the replica checksums", torch.distributed.all_gather,
                         gathered, local, group=self.context.commit_group)
        for rank, other in enumerate(gathered):
            if not torch.equal(other, local):
                raise RuntimeError(f"DistributedTraining: rank {rank}'s replica differs from "
                                   f"rank {self.rank}'s")

    def close(self):
        r"""Removes the committer: the memory applies its own write-backs
        again."""
        self.memory.set_committer(None)
