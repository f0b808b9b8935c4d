r"""The training and evaluation loops of PyG's ``examples/tgn.py``.

They take the memory, loaders and models as arguments, so the very same loop
runs with PyG's classes or with pyg_mspipe's (the benchmarks and equivalence
tests rely on that).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory
from pyg_mspipe.engine.metrics import average_precision, roc_auc
from pyg_mspipe.engine.models import GraphAttentionEmbedding, LinkPredictor
from pyg_mspipe.engine.timing import NULL_TIMER

__all__ = ["TGNModel", "build_tgn", "train_epoch", "train_steps", "evaluate"]


@dataclass
class TGNModel:
    r"""The pieces of a TGN link predictor: memory, embedding, predictor and
    optimizer (PyG's ``examples/tgn.py``)."""
    memory: torch.nn.Module
    gnn: torch.nn.Module
    link_pred: torch.nn.Module
    optimizer: torch.optim.Optimizer
    criterion: torch.nn.Module = field(default_factory=torch.nn.BCEWithLogitsLoss)

    def modules(self) -> list[torch.nn.Module]:
        return [self.memory, self.gnn, self.link_pred]


def build_tgn(num_nodes: int, msg_dim: int, *, memory_cls=None, message_cls=None,
              aggregator_cls=None, memory_dim: int = 100, time_dim: int = 100,
              embedding_dim: int = 100, lr: float = 1e-4, dropout: float = 0.1,
              device: torch.device | str = "cpu", **memory_kwargs) -> TGNModel:
    r"""Builds the model of PyG's ``examples/tgn.py``.

    Args:
        num_nodes (int): Number of nodes.
        msg_dim (int): Edge feature size.
        memory_cls (type, optional): The memory class, e.g.
            :class:`torch_geometric.nn.TGNMemory` or
            :class:`pyg_mspipe.TGNMemory`. (default: :class:`pyg_mspipe.TGNMemory`)
        message_cls (type, optional): Message module class.
            (default: :class:`pyg_mspipe.IdentityMessage`)
        aggregator_cls (type, optional): Aggregator class.
            (default: :class:`pyg_mspipe.LastAggregator`)
        memory_dim (int, optional): Memory size. (default: :obj:`100`)
        time_dim (int, optional): Time encoding size. (default: :obj:`100`)
        embedding_dim (int, optional): Embedding size. (default: :obj:`100`)
        lr (float, optional): Adam learning rate. (default: :obj:`1e-4`)
        dropout (float, optional): Attention dropout. (default: :obj:`0.1`)
        device (torch.device, optional): Device. (default: :obj:`"cpu"`)
        **memory_kwargs: Extra keyword arguments of the memory class.
    """
    memory_cls = memory_cls or TGNMemory
    message_cls = message_cls or IdentityMessage
    aggregator_cls = aggregator_cls or LastAggregator
    memory = memory_cls(num_nodes, msg_dim, memory_dim, time_dim,
                        message_module=message_cls(msg_dim, memory_dim, time_dim),
                        aggregator_module=aggregator_cls(), **memory_kwargs).to(device)
    gnn = GraphAttentionEmbedding(memory_dim, embedding_dim, msg_dim, memory.time_enc,
                                  dropout=dropout).to(device)
    link_pred = LinkPredictor(embedding_dim).to(device)
    params = list(memory.parameters())
    seen = {id(p) for p in params}
    params += [p for m in (gnn, link_pred) for p in m.parameters() if id(p) not in seen]
    optimizer = torch.optim.Adam(params, lr=lr)
    return TGNModel(memory, gnn, link_pred, optimizer)


def _edge_inputs(data, e_id: Tensor, device) -> tuple[Tensor, Tensor]:
    return data.t[e_id].to(device), data.msg[e_id].to(device)


def train_epoch(model: TGNModel, loader, neighbor_loader, data, *,
                device: torch.device | str = "cpu", timer=None,
                losses: list[float] | None = None) -> float:
    r"""One training epoch of PyG's ``examples/tgn.py`` (memory and neighbour
    loader reset first). Returns the mean loss per event.

    Args:
        model (TGNModel): The model.
        loader (Iterable): Training batches (:class:`TemporalData` with
            :obj:`neg_dst` and :obj:`n_id`).
        neighbor_loader: A :class:`LastNeighborLoader` (PyG's or ours).
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
    r"""The loop of :func:`train_epoch`, one batch per step: a generator
    that loads and trains on the next batch each time it is advanced and
    yields :obj:`(loss, num_events)` of that batch (so that two loops can be
    driven in lockstep, e.g. by a benchmark). Same arguments as
    :func:`train_epoch`."""
    timer = timer or NULL_TIMER
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    memory.train()
    gnn.train()
    link_pred.train()
    memory.reset_state()
    neighbor_loader.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    it = iter(loader)
    while True:
        with timer("load"):
            batch = next(it, None)
            if batch is None:
                return
            batch = batch.to(device)
        model.optimizer.zero_grad()
        with timer("sample"):
            n_id, edge_index, e_id = neighbor_loader(batch.n_id)
            assoc[n_id] = torch.arange(n_id.size(0), device=device)
            t_e, msg_e = _edge_inputs(data, e_id, device)
        with timer("memory"):
            z, last_update = memory(n_id)
        with timer("embed+loss"):
            z = gnn(z, last_update, edge_index, t_e, msg_e)
            pos_out = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
            neg_out = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
            loss = model.criterion(pos_out, torch.ones_like(pos_out))
            loss = loss + model.criterion(neg_out, torch.zeros_like(neg_out))
        with timer("memory"):
            memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        with timer("sample"):
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
        neighbor_loader: A :class:`LastNeighborLoader` (PyG's or ours).
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
        n_id, edge_index, e_id = neighbor_loader(batch.n_id)
        assoc[n_id] = torch.arange(n_id.size(0), device=device)
        z, last_update = memory(n_id)
        t_e, msg_e = _edge_inputs(data, e_id, device)
        z = gnn(z, last_update, edge_index, t_e, msg_e)
        pos_out = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
        neg_out = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
        y_pred = torch.cat([pos_out, neg_out], dim=0).sigmoid().view(-1).cpu()
        y_true = torch.cat([torch.ones(pos_out.size(0)), torch.zeros(neg_out.size(0))])
        aps.append(average_precision(y_true, y_pred))
        aucs.append(roc_auc(y_true, y_pred))
        memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        neighbor_loader.insert(batch.src, batch.dst)
    return float(torch.tensor(aps).mean()), float(torch.tensor(aucs).mean())
