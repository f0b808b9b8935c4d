r"""``torchrun --nproc_per_node=N -m pyg_mspipe train ...``: the launch
context torchrun sets (:obj:`RANK`, :obj:`WORLD_SIZE`, :obj:`LOCAL_RANK`,
:obj:`MASTER_ADDR`, :obj:`MASTER_PORT`) turns a training run into one rank of
a data-parallel run with replicated memory
(:mod:`pyg_mspipe.distributed`)."""
from __future__ import annotations

import os
from dataclasses import replace

import torch

from pyg_mspipe import _cuda
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.cli.run import TrainingRun, train_candidates
from pyg_mspipe.distributed import DistributedContext, DistributedTraining

__all__ = ["launch_context", "rank_device", "distribute_run"]

_TORCHRUN = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launch_context(device: str) -> DistributedContext | None:
    r"""The :class:`~pyg_mspipe.distributed.DistributedContext` of a run
    launched by torchrun (its environment variables set), else
    :obj:`None`. Backend: NCCL for a CUDA device (this rank's GPU made the
    current device, see :func:`rank_device`), gloo otherwise."""
    if not all(name in os.environ for name in _TORCHRUN):
        return None
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    _cuda.set_device(torch.device(rank_device(device)))
    timeout = float(os.environ.get("PYG_MSPIPE_DIST_TIMEOUT", 300))
    return DistributedContext.init(backend, timeout=timeout)


def rank_device(device: str) -> str:
    r"""This rank's device: :obj:`--device cuda` under torchrun means
    :obj:`cuda:$LOCAL_RANK` (one GPU per rank); anything else as given."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def distribute_run(run: TrainingRun, context: DistributedContext) -> TrainingRun:
    r"""The run with its memory and modules wrapped in a
    :class:`~pyg_mspipe.distributed.DistributedTraining` (:obj:`run.dp`)
    and its training loader replaced by this rank's
    :class:`~pyg_mspipe.distributed.ShareLoader` (same global batches,
    negatives from a generator seeded with :obj:`--seed` on every rank).
    Evaluation runs on every rank alike (the replicas are equal); only
    rank 0 prints."""
    config = run.config
    if config.model != "tgn":
        raise ConfigError(f"--model {config.model}: under torchrun only 'tgn' trains "
                          "distributed for now")
    for flag, value in (("--checkpoint-dir", config.checkpoint_dir),
                        ("--plots", config.plots_dir)):
        if value is not None:
            raise ConfigError(f"{flag} is not supported under torchrun yet (a loop of your "
                              "own checkpoints with DistributedTraining.save_checkpoint)")
    model = run.model
    dp = DistributedTraining(context, model.memory, [model.gnn, model.link_pred])
    pipeline = {}
    if config.pipelined:
        pipeline = dict(staleness_bound=config.staleness_bound, schedule=config.schedule)
    loader = dp.loader(run.split.train, config.batch_size, 1.0, seed=config.seed,
                       memory=model.memory, neighbor_loader=run.neighbor_loader,
                       device=run.device,
                       neg_dst_candidates=train_candidates(config, run.split), **pipeline)
    return replace(run, train_loader=loader, dp=dp)
