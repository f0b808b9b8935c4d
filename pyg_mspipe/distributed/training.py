r"""The training loop of PyG's ``examples/tgn.py`` on one rank's shares (what
``torchrun ... -m pyg_mspipe train`` runs on each rank)."""
from __future__ import annotations

import torch

from pyg_mspipe.distributed.trainer import DistributedTraining

__all__ = ["train_steps"]


def train_steps(model, dp: DistributedTraining, loader, neighbor_loader, data, *,
                device: torch.device | str = "cpu", reset: bool = True):
    r""":func:`pyg_mspipe.engine.training.train_steps` on this rank's shares:
    a generator that trains on the next global batch each time it is
    advanced and yields :obj:`(loss, num_events)` of the global batch, the
    same on every rank.

    Args:
        model (TGNModel): The model (:func:`~pyg_mspipe.engine.build_tgn`).
        dp (DistributedTraining): The wrapped run.
        loader (ShareLoader): This rank's shares.
        neighbor_loader (LastNeighborLoader): The (replicated) neighbour loader.
        data (TemporalData): The full event stream.
        device (torch.device, optional): Compute device. (default: :obj:`"cpu"`)
        reset (bool, optional): Reset the memory and the neighbour loader
            first. (default: :obj:`True`)
    """
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    for module in (memory, gnn, link_pred):
        module.train()
    if reset:
        memory.reset_state()
        neighbor_loader.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    for batch in loader:
        batch = batch.to(device)
        model.optimizer.zero_grad()
        n_id, edge_index, e_id = neighbor_loader(batch.n_id)
        assoc[n_id] = torch.arange(n_id.size(0), device=device)
        z, last_update = memory(n_id)
        loss = None
        if batch.num_events:  # a share may be empty
            t_e, msg_e = data.t[e_id].to(device), data.msg[e_id].to(device)
            z = gnn(z, last_update, edge_index, t_e, msg_e)
            pos_out = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
            neg_out = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
            loss = model.criterion(pos_out, torch.ones_like(pos_out))
            loss = loss + model.criterion(neg_out, torch.zeros_like(neg_out))
        memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        neighbor_loader.insert(batch.global_src, batch.global_dst)
        if loss is not None:
            loss.backward()
        global_loss = dp.reduce_gradients(batch, None if loss is None else loss.detach())
        model.optimizer.step()
        memory.detach()
        yield global_loss, batch.global_src.numel()
