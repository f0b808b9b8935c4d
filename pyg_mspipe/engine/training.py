r"""The training and evaluation loops of PyG's ``examples/tgn.py`` for the
engine's models; the same loop runs with PyG's classes or with ours."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_mspipe.engine.metrics import average_precision, roc_auc
from pyg_mspipe.engine.models import TGNModel, build_model, build_tgn
from pyg_mspipe.engine.timing import NULL_TIMER, timed_batches

__all__ = ["TGNModel", "build_tgn", "build_model", "train_epoch", "train_steps", "evaluate"]


def _edge_inputs(data, e_id: Tensor, device) -> tuple[Tensor, Tensor]:
    return data.t[e_id].to(device), data.msg[e_id].to(device)


def _nodes(model: TGNModel, neighbor_loader, n_id: Tensor, data, device) -> tuple:
    if neighbor_loader is None:
        if model.needs_neighbors:
            raise ValueError(f"model {model.name!r} reads the sampled neighbourhood: "
                             "'neighbor_loader' must be given")
        return n_id, None, None, None
    n_id, edge_index, e_id = neighbor_loader(n_id)
    t_e, msg_e = _edge_inputs(data, e_id, device)
    return n_id, edge_index, t_e, msg_e


def train_epoch(model: TGNModel, loader, neighbor_loader, data, *,
                device: torch.device | str = "cpu", timer=None,
                losses: list[float] | None = None) -> float:
    r"""One training epoch of PyG's ``examples/tgn.py`` (memory and neighbour
    loader reset first). Returns the mean loss per event.

    Args:
        model (TGNModel): The model.
        loader (Iterable): Training batches (:class:`TemporalData` with
            :obj:`neg_dst` and :obj:`n_id`).
        neighbor_loader: A :class:`LastNeighborLoader` (PyG's or ours), or
            :obj:`None` for a model without neighbourhood (JODIE, APAN).
        data (TemporalData): The full event stream (edge times and features
            of sampled neighbours are read from it).
        device (torch.device, optional): Compute device. (default: :obj:`"cpu"`)
        timer (PhaseTimer, optional): Receives the time of each phase.
            (default: :obj:`None`)
        losses (list, optional): If given, each batch's loss is appended.
            (default: :obj:`None`)
    """
    total_loss, total_events = 0.0, 0
    for value, num_events in train_steps(model, loader, neighbor_loader, data, device=device,
                                         timer=timer):
        if losses is not None:
            losses.append(value)
        total_loss += value * num_events
        total_events += num_events
    return total_loss / max(total_events, 1)


def train_steps(model: TGNModel, loader, neighbor_loader, data, *,
                device: torch.device | str = "cpu", timer=None):
    r""":func:`train_epoch` as a generator: trains on one batch per step and
    yields its :obj:`(loss, num_events)`. Same arguments."""
    timer = timer or NULL_TIMER
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    memory.train()
    gnn.train()
    link_pred.train()
    memory.reset_state()
    if neighbor_loader is not None:
        neighbor_loader.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    for batch in timed_batches(loader, device, timer):
        model.optimizer.zero_grad()
        with timer("sample"):
            n_id, edge_index, t_e, msg_e = _nodes(model, neighbor_loader, batch.n_id, data,
                                                  device)
            assoc[n_id] = torch.arange(n_id.size(0), device=device)
        with timer("memory"):
            z, last_update = memory(n_id)
        with timer("embed+loss"):
            h = model.embed(z, last_update, edge_index, t_e, msg_e)
            pos_out = model.score(h, last_update, assoc, batch.src, batch.dst, batch.t)
            neg_out = model.score(h, last_update, assoc, batch.src, batch.neg_dst, batch.t)
            loss = model.criterion(pos_out, torch.ones_like(pos_out))
            loss = loss + model.criterion(neg_out, torch.zeros_like(neg_out))
        with timer("memory"):
            model.update_memory(h, assoc, batch.src, batch.dst, batch.t, batch.msg)
        with timer("sample"):
            if neighbor_loader is not None:
                neighbor_loader.insert(batch.src, batch.dst)
        with timer("backward+step"):
            loss.backward()
            model.optimizer.step()
            memory.detach()
        yield float(loss.detach()), batch.num_events


@torch.no_grad()
def evaluate(model: TGNModel, loader, neighbor_loader, data, *,
             device: torch.device | str = "cpu", seed: int | None = 12345) -> tuple[float, float]:
    r"""Evaluation of PyG's ``examples/tgn.py``: mean per-batch average
    precision and ROC AUC, storing the events in memory as it goes.

    Args:
        model (TGNModel): The model.
        loader (Iterable): Evaluation batches.
        neighbor_loader: A :class:`LastNeighborLoader` (PyG's or ours), or
            :obj:`None` for a model without neighbourhood (JODIE, APAN).
        data (TemporalData): The full event stream.
        device (torch.device, optional): Compute device. (default: :obj:`"cpu"`)
        seed (int, optional): :func:`torch.manual_seed` before iterating, as
            the example does (deterministic negatives). (default: :obj:`12345`)
    """
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    memory.eval()
    gnn.eval()
    link_pred.eval()
    if seed is not None:
        torch.manual_seed(seed)
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    aps, aucs = [], []
    for batch in loader:
        batch = batch.to(device)
        n_id, edge_index, t_e, msg_e = _nodes(model, neighbor_loader, batch.n_id, data, device)
        assoc[n_id] = torch.arange(n_id.size(0), device=device)
        z, last_update = memory(n_id)
        h = model.embed(z, last_update, edge_index, t_e, msg_e)
        pos_out = model.score(h, last_update, assoc, batch.src, batch.dst, batch.t)
        neg_out = model.score(h, last_update, assoc, batch.src, batch.neg_dst, batch.t)
        y_pred = torch.cat([pos_out, neg_out], dim=0).sigmoid().view(-1).cpu()
        y_true = torch.cat([torch.ones(pos_out.size(0)), torch.zeros(neg_out.size(0))])
        aps.append(average_precision(y_true, y_pred))
        aucs.append(roc_auc(y_true, y_pred))
        model.update_memory(h, assoc, batch.src, batch.dst, batch.t, batch.msg)
        if neighbor_loader is not None:
            neighbor_loader.insert(batch.src, batch.dst)
    return float(torch.tensor(aps).mean()), float(torch.tensor(aucs).mean())
