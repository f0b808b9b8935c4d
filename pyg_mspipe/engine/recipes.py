r"""DyGLib's recipe (``pyg-mspipe train --recipe dyglib``), built from the
library's modules. For TGN: the drop-in :class:`~pyg_mspipe.TGNMemory`, each
event's own most recent neighbours
(:class:`~pyg_mspipe.nn.RecentNeighborSampler`) and a TGAT-style attention
embedding (:class:`~pyg_mspipe.nn.TemporalAttentionEmbedding`), with its
training and evaluation loops. For JODIE and DyRep: the engine's models and
loops, with DyGLib's time encoder initialisation (:func:`dyglib_model`).

Where PyG's example embeds each node of a batch once, from the neighbours
its :class:`~pyg_mspipe.LastNeighborLoader` held before the batch, this
recipe embeds every (node, time) pair scored, from the neighbours the node
had strictly before that time, earlier events of the same batch included.
``docs/reproduce.md`` has the ablation that separates the two recipes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from pyg_mspipe.engine.evaluation import _check_metrics, _loader_negatives, _Scores
from pyg_mspipe.engine.models import LinkPredictor, _optimizer
from pyg_mspipe.engine.negatives import NegativeSampler
from pyg_mspipe.engine.timing import NULL_TIMER, timed_batches
from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.embeddings import GraphAttentionEmbedding
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import IdentityMessage
from pyg_mspipe.nn.recent_neighbors import (
    RecentNeighbors,
    RecentNeighborSampler,
    prepared_sample,
    read_nodes,
)
from pyg_mspipe.nn.temporal_attention import TemporalAttentionEmbedding

__all__ = ["RECIPES", "DYGLIB_MODELS", "EventTGNModel", "build_event_tgn", "dyglib_model",
           "dyglib_time_init", "event_train_steps", "evaluate_events"]

#: The recipes of ``pyg-mspipe train --recipe``.
RECIPES = ("pyg", "dyglib")

#: The models of the recipe :obj:`"dyglib"` (DyGLib's memory-based models).
DYGLIB_MODELS = ("tgn", "jodie", "dyrep")


def dyglib_time_init(time_enc: torch.nn.Module):
    r"""DyGLib's (and TGAT's) initialisation of a :class:`TimeEncoder`:
    frequencies :math:`10^{-9 i / (d - 1)}`, phases zero."""
    d = time_enc.out_channels
    with torch.no_grad():
        time_enc.lin.weight.copy_((10.0 ** -torch.linspace(0, 9, d)).view(d, 1))
        time_enc.lin.bias.zero_()


def dyglib_model(model):
    r"""Applies DyGLib's recipe to a model of
    :func:`~pyg_mspipe.engine.models.build_model` (JODIE, DyRep; TGN's recipe
    is :func:`build_event_tgn`): its memory's time encoder, which encodes
    :math:`t - t^-` in every message, starts from
    :func:`dyglib_time_init`. Returns :obj:`model`."""
    dyglib_time_init(model.memory.time_enc)
    return model


@dataclass
class EventTGNModel:
    r"""TGN embedding each scored (node, time) pair from that node's own
    most recent neighbours before that time.

    Attributes:
        memory (TGNMemory): The memory.
        gnn (torch.nn.Module): A :class:`TemporalAttentionEmbedding`
            (DyGLib's) or a :class:`GraphAttentionEmbedding` (PyG's
            embedding, applied per query: for the ablation).
        link_pred (torch.nn.Module): The link predictor.
        optimizer (torch.optim.Optimizer): The optimizer.
        sampler (RecentNeighborSampler): The stream's neighbour index.
        query_time (str): :obj:`"event"` (DyGLib: neighbours before each
            event's time) or :obj:`"batch"` (neighbours before the batch's
            first event, as PyG's loader sees them: for the ablation).
    """
    memory: TGNMemory
    gnn: torch.nn.Module
    link_pred: torch.nn.Module
    optimizer: torch.optim.Optimizer
    sampler: RecentNeighborSampler
    query_time: str = "event"
    criterion: torch.nn.Module = field(default_factory=torch.nn.BCEWithLogitsLoss)
    name: ClassVar[str] = "tgn"
    needs_neighbors: ClassVar[bool] = False  # (no LastNeighborLoader: its own sampler)

    def modules(self) -> list[torch.nn.Module]:
        return [self.memory, self.gnn, self.link_pred]

    def embed(self, data, node: Tensor, t: Tensor,
              sampler: RecentNeighborSampler | None = None,
              nb: RecentNeighbors | None = None) -> Tensor:
        r"""Embeddings :obj:`[Q, embedding_dim]` of :obj:`node[i]` at
        :obj:`t[i]` (:obj:`data`: the stream the sampler indexes, for the
        edge features; :obj:`sampler`: that index, the model's own if not
        given; :obj:`nb`: its sample of these queries, if already drawn)."""
        if nb is None or self.query_time != "event":
            t_query = t if self.query_time == "event" else t.min().expand_as(t)
            nb = (self.sampler if sampler is None else sampler).dense(node, t_query)
        n_id, inverse = read_nodes(node, nb)
        z, last_update = self.memory(n_id)
        q, k = node.numel(), nb.nbr.size(1)
        at_query, at_nbr = inverse[:q], inverse[q:].view(q, k)
        msg = data.msg[nb.e_id.view(-1).to(data.msg.device)].to(z.device).view(q, k, -1)
        if isinstance(self.gnn, GraphAttentionEmbedding):  # PyG's embedding, per query
            mask = nb.mask.view(-1)
            src = at_nbr.view(-1)[mask]
            qid = torch.arange(q, device=z.device).repeat_interleave(k)[mask]
            rel_t = (last_update[src] - nb.t.view(-1)[mask]).to(z.dtype)
            edge_attr = torch.cat([self.gnn.time_enc(rel_t), msg.view(q * k, -1)[mask]], -1)
            return self.gnn.conv((z, z[at_query]), torch.stack([src, qid]), edge_attr)
        rel_t = (t.unsqueeze(-1) - nb.t).to(z.dtype)
        return self.gnn(z, at_query, at_nbr, rel_t, msg, nb.mask)


def build_event_tgn(num_nodes: int, msg_dim: int, sampler: RecentNeighborSampler, *,
                    memory_dim: int = 100, time_dim: int = 100, embedding_dim: int = 100,
                    lr: float = 1e-4, dropout: float = 0.1, embedding: str = "attention",
                    query_time: str = "event", time_init: str = "dyglib",
                    device: torch.device | str = "cpu", **memory_kwargs) -> EventTGNModel:
    r"""Builds DyGLib's TGN recipe (the defaults) or one of its ablations.

    Args:
        num_nodes (int): Number of nodes.
        msg_dim (int): Edge feature size.
        sampler (RecentNeighborSampler): The neighbour index of the stream
            the loops read.
        memory_dim (int, optional): Memory size. (default: :obj:`100`)
        time_dim (int, optional): Time encoding size. (default: :obj:`100`)
        embedding_dim (int, optional): Embedding size. (default: :obj:`100`)
        lr (float, optional): Adam learning rate. (default: :obj:`1e-4`)
        dropout (float, optional): Attention dropout. (default: :obj:`0.1`)
        embedding (str, optional): :obj:`"attention"` (DyGLib's) or
            :obj:`"transformer"` (PyG's). (default: :obj:`"attention"`)
        query_time (str, optional): :obj:`"event"` or :obj:`"batch"`.
            (default: :obj:`"event"`)
        time_init (str, optional): :obj:`"dyglib"` (frequencies
            :math:`10^{-9i/(d-1)}`, phases zero) or :obj:`"pyg"` (PyG's linear
            layer initialisation). (default: :obj:`"dyglib"`)
        device (torch.device, optional): Device. (default: :obj:`"cpu"`)
        **memory_kwargs: Extra keyword arguments of :class:`TGNMemory`.
    """
    for name, value, allowed in (("embedding", embedding, ("attention", "transformer")),
                                 ("query_time", query_time, ("event", "batch")),
                                 ("time_init", time_init, ("pyg", "dyglib"))):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; expected one of {list(allowed)}")
    memory = TGNMemory(num_nodes, msg_dim, memory_dim, time_dim,
                       message_module=IdentityMessage(msg_dim, memory_dim, time_dim),
                       aggregator_module=LastAggregator(), **memory_kwargs)
    if time_init == "dyglib":
        dyglib_time_init(memory.time_enc)
    if embedding == "attention":
        gnn = TemporalAttentionEmbedding(memory_dim, embedding_dim, msg_dim, memory.time_enc,
                                         dropout=dropout)
    else:
        gnn = GraphAttentionEmbedding(memory_dim, embedding_dim, msg_dim, memory.time_enc,
                                      dropout=dropout)
    memory, gnn = memory.to(device), gnn.to(device)
    link_pred = LinkPredictor(embedding_dim).to(device)
    return EventTGNModel(memory, gnn, link_pred, _optimizer(memory, gnn, link_pred, lr=lr),
                         sampler.to(device), query_time)


def event_train_steps(model: EventTGNModel, loader, data, *,
                      device: torch.device | str = "cpu", timer=None):
    r"""One training epoch of the recipe (memory reset first), one batch per
    step: yields :obj:`(loss, num_events)` of each batch, as
    :func:`~pyg_mspipe.engine.training.train_steps` does.

    Args:
        model (EventTGNModel): The model.
        loader (Iterable): Training batches (with :obj:`neg_dst`, one per event).
        data (TemporalData): The stream the model's sampler indexes.
        device (torch.device, optional): Compute device. (default: :obj:`"cpu"`)
        timer (PhaseTimer, optional): Receives the time of each phase.
            (default: :obj:`None`)
    """
    timer = timer or NULL_TIMER
    for module in model.modules():
        module.train()
    model.memory.reset_state()
    for batch in timed_batches(loader, device, timer):
        model.optimizer.zero_grad()
        src, dst, t, num = batch.src, batch.dst, batch.t, batch.num_events
        neg_dst = batch.neg_dst.view(num, -1)[:, 0]
        node = torch.cat([src, dst, neg_dst])
        # The loader's sample ahead, if any, is of batch_queries(batch): these
        # very queries when the batch has one negative per event.
        nb = prepared_sample(batch) if batch.neg_dst.numel() == num else None
        with timer("embed+loss"):
            h = model.embed(data, node, t.repeat(3), nb=nb)
            pos_out = model.link_pred(h[:num], h[num:2 * num])
            neg_out = model.link_pred(h[:num], h[2 * num:])
            loss = model.criterion(pos_out, torch.ones_like(pos_out))
            loss = loss + model.criterion(neg_out, torch.zeros_like(neg_out))
        with timer("memory"):
            model.memory.update_state(src, dst, t, batch.msg)
        with timer("backward+step"):
            loss.backward()
            model.optimizer.step()
            model.memory.detach()
        yield float(loss.detach()), num


@torch.no_grad()
def evaluate_events(model: EventTGNModel, loader, data, *,
                    sampler: NegativeSampler | None = None, num_negatives: int = 1,
                    metrics: Sequence[str] = ("ap", "auc"),
                    device: torch.device | str = "cpu", seed: int | None = 12345,
                    new_nodes: Tensor | None = None, group_size: int | None = None,
                    neighbor_sampler: RecentNeighborSampler | None = None) -> dict:
    r"""The recipe's evaluation, with the arguments, negatives and metrics of
    :func:`~pyg_mspipe.engine.evaluation.evaluate_link_prediction` (all its
    rules, e.g. AP per group of :obj:`group_size` events), every positive
    and negative pair embedded at its event's time.

    :obj:`neighbor_sampler` (default: the model's) is the neighbour index
    of :obj:`data` to read: DyGLib evaluates with an index of every event
    of the stream (its ``full_neighbor_sampler``), the training-period
    events of the nodes an inductive split keeps out of training included,
    while it trains on an index of the training events."""
    metrics = _check_metrics(metrics)
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"'num_negatives' must be a positive integer (got {num_negatives!r})")
    for module in model.modules():
        module.eval()
    if seed is not None:
        torch.manual_seed(seed)
    if sampler is not None:
        sampler.reset()
    is_new = None
    if new_nodes is not None:
        new_nodes = new_nodes.to(device)
        size = max(data.num_nodes, int(new_nodes.max()) + 1 if new_nodes.numel() else 0)
        is_new = torch.zeros(size, dtype=torch.bool, device=device)
        is_new[new_nodes] = True
    scores = _Scores(metrics, group_size)
    for batch in loader:
        batch = batch.to(device)
        if scores.group_size is None:
            scores.group_size = batch.num_events
        src, dst, t, keep = batch.src, batch.dst, batch.t, None
        if is_new is not None:
            keep = is_new[src] | is_new[dst]
            src, dst, t = src[keep], dst[keep], t[keep]
        n = src.numel()
        if n > 0:
            if sampler is None:
                neg_src, neg_dst = _loader_negatives(batch, src, keep)
            else:
                neg_src, neg_dst = sampler.sample(src, dst, t, num_negatives)
            t_neg = t.view(-1, 1).expand_as(neg_dst).reshape(-1)
            m = t_neg.numel()
            h = model.embed(data, torch.cat([src, dst, neg_src.reshape(-1), neg_dst.reshape(-1)]),
                            torch.cat([t, t, t_neg, t_neg]), neighbor_sampler)
            pos = model.link_pred(h[:n], h[n:2 * n]).view(-1)
            neg = model.link_pred(h[2 * n:2 * n + m], h[2 * n + m:]).view(n, -1)
            scores.add(pos, neg)
        model.memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
    return scores.result()
