"""A small TGN training setup driven through the pipelined loader."""
import gc

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, MeanAggregator, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn, train_epoch
from pyg_mspipe.pipeline import hook_stages

from ..helpers import random_stream

NUM_NODES, DIM, MSG_DIM, BATCH = 60, 16, 8, 25


def make_data(num_events=600, seed=0, num_nodes=NUM_NODES):
    src, dst, t, msg = random_stream(num_nodes, num_events, MSG_DIM, seed=seed)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


def setup(data, lr=1e-3, aggregator="last", seed=0, memory_kwargs=None, hook=None,
          **loader_kwargs):
    gc.collect()
    torch.manual_seed(seed)
    device = data.src.device
    agg = MeanAggregator if aggregator == "mean" else None
    model = build_tgn(NUM_NODES, MSG_DIM, aggregator_cls=agg, memory_dim=DIM, time_dim=DIM,
                      embedding_dim=DIM, lr=lr, device=device, **(memory_kwargs or {}))
    if hook is not None:  # called before each fetch and write-back
        hook_stages(model.memory, hook)
    neighbor_loader = LastNeighborLoader(NUM_NODES, size=5, device=device)
    loader_kwargs.setdefault("prefetch", 2)
    loader = TemporalDataLoader(data, batch_size=BATCH, neg_sampling_ratio=1.0,
                                memory=model.memory, neighbor_loader=neighbor_loader,
                                generator=torch.Generator(device).manual_seed(seed + 1),
                                **loader_kwargs)
    return model, neighbor_loader, loader


def memory_step(model, neighbor_loader, batch):
    """The memory side of one step of PyG's loop: sample, read, write back."""
    n_id, _, _ = neighbor_loader(batch.n_id)
    model.memory(n_id)
    model.memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
    neighbor_loader.insert(batch.src, batch.dst)
    model.memory.detach()


def train(data, epochs=1, **kwargs):
    """Trains; returns (losses, memory, last_update, stats, model)."""
    model, neighbor_loader, loader = setup(data, **kwargs)
    losses = []
    for _ in range(epochs):
        train_epoch(model, loader, neighbor_loader, data, losses=losses,
                    device=data.src.device)
    mem = model.memory
    return losses, mem.memory.clone(), mem.last_update.clone(), loader.stats, model
