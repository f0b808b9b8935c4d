r"""The models the engine trains (TGN, JODIE, DyRep, APAN), built by
:func:`build_model`; each says how it embeds, scores and updates its
memory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import Linear

from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.apan import APANMemory
from pyg_mspipe.nn.dyrep import DyRepMemory
from pyg_mspipe.nn.embeddings import (
    GraphAttentionEmbedding,
    IdentityEmbedding,
    TimeProjectionEmbedding,
)
from pyg_mspipe.nn.jodie import JODIEMemory
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import IdentityMessage

__all__ = ["GraphAttentionEmbedding", "LinkPredictor", "TGNModel", "JODIEModel",
           "DyRepModel", "APANModel", "MODELS", "build_model", "build_tgn"]


class LinkPredictor(torch.nn.Module):
    r"""Scores a (source, destination) pair from their embeddings.

    Args:
        in_channels (int): Embedding size.
    """

    def __init__(self, in_channels: int):
        super().__init__()
        self.lin_src = Linear(in_channels, in_channels)
        self.lin_dst = Linear(in_channels, in_channels)
        self.lin_final = Linear(in_channels, 1)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module."""
        for lin in (self.lin_src, self.lin_dst, self.lin_final):
            lin.reset_parameters()

    def forward(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        h = self.lin_src(z_src) + self.lin_dst(z_dst)
        return self.lin_final(h.relu())


@dataclass
class TGNModel:
    r"""PyG's ``examples/tgn.py`` model: memory, embedding (:obj:`gnn`),
    predictor and optimizer; the other models override :meth:`embed`,
    :meth:`score` and :meth:`update_memory`."""
    memory: torch.nn.Module
    gnn: torch.nn.Module
    link_pred: torch.nn.Module
    optimizer: torch.optim.Optimizer
    criterion: torch.nn.Module = field(default_factory=torch.nn.BCEWithLogitsLoss)
    #: The name :func:`build_model` knows it by.
    name: ClassVar[str] = "tgn"
    #: Whether :meth:`embed` reads a sampled neighbourhood.
    needs_neighbors: ClassVar[bool] = True

    def modules(self) -> list[torch.nn.Module]:
        return [self.memory, self.gnn, self.link_pred]

    def embed(self, z: Tensor, last_update: Tensor, edge_index: Tensor | None,
              t: Tensor | None, msg: Tensor | None):
        r"""What :meth:`score` reads, from the sampled nodes' memory and
        edges (TGN: graph attention)."""
        return self.gnn(z, last_update, edge_index, t, msg)

    def score(self, h, last_update: Tensor, assoc: Tensor, src: Tensor, dst: Tensor,
              t: Tensor) -> Tensor:
        r"""Logits of the pairs :obj:`(src, dst)` at times :obj:`t`
        (:obj:`assoc`: node id -> row of :obj:`h`)."""
        return self.link_pred(h[assoc[src]], h[assoc[dst]])

    def update_memory(self, h, assoc: Tensor, src: Tensor, dst: Tensor, t: Tensor,
                      msg: Tensor):
        r"""Stores the batch's events in the memory."""
        self.memory.update_state(src, dst, t, msg)


@dataclass
class JODIEModel(TGNModel):
    r"""JODIE: :class:`~pyg_mspipe.nn.JODIEMemory`, both endpoints
    time-projected (:obj:`gnn`) to the scored time; no neighbourhood."""
    name: ClassVar[str] = "jodie"
    needs_neighbors: ClassVar[bool] = False

    def embed(self, z, last_update, edge_index, t, msg):
        return z

    def score(self, h, last_update, assoc, src, dst, t):
        i, j = assoc[src], assoc[dst]
        return self.link_pred(self.gnn(h[i], last_update[i], t),
                              self.gnn(h[j], last_update[j], t))


@dataclass
class DyRepModel(TGNModel):
    r"""DyRep: :class:`~pyg_mspipe.nn.DyRepMemory`, scored on the memory;
    no sampled neighbourhood."""
    name: ClassVar[str] = "dyrep"
    needs_neighbors: ClassVar[bool] = False

    def embed(self, z, last_update, edge_index, t, msg):
        return self.gnn(z)


@dataclass
class APANModel(TGNModel):
    r"""APAN: :class:`~pyg_mspipe.nn.APANMemory`, scored on the memory;
    no sampled neighbourhood."""
    name: ClassVar[str] = "apan"
    needs_neighbors: ClassVar[bool] = False

    def embed(self, z, last_update, edge_index, t, msg):
        return self.gnn(z)


#: The model classes by name.
MODELS = {cls.name: cls for cls in (TGNModel, JODIEModel, DyRepModel, APANModel)}


def _optimizer(memory, *others, lr: float) -> torch.optim.Adam:
    params = list(memory.parameters())
    seen = {id(p) for p in params}
    params += [p for m in others for p in m.parameters() if id(p) not in seen]
    return torch.optim.Adam(params, lr=lr)


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
    return TGNModel(memory, gnn, link_pred, _optimizer(memory, gnn, link_pred, lr=lr))


def build_model(name: str, num_nodes: int, msg_dim: int, *, memory_dim: int = 100,
                time_dim: int = 100, embedding_dim: int = 100, lr: float = 1e-4,
                dropout: float = 0.1, mailbox_size: int = 10, num_neighbors: int = 10,
                device: torch.device | str = "cpu", **memory_kwargs) -> TGNModel:
    r"""Builds one of the engine's models by name.

    Args:
        name (str): :obj:`"tgn"`, :obj:`"jodie"`, :obj:`"dyrep"` or
            :obj:`"apan"`.
        num_nodes (int): Number of nodes.
        msg_dim (int): Edge feature size.
        memory_dim (int, optional): Memory size. (default: :obj:`100`)
        time_dim (int, optional): Time encoding size. (default: :obj:`100`)
        embedding_dim (int, optional): Embedding size (TGN), structural
            embedding size (DyRep). (default: :obj:`100`)
        lr (float, optional): Adam learning rate. (default: :obj:`1e-4`)
        dropout (float, optional): Attention dropout of TGN's graph
            attention (DyRep's structural attention has none).
            (default: :obj:`0.1`)
        mailbox_size (int, optional): APAN's mails per node. (default: :obj:`10`)
        num_neighbors (int, optional): APAN's delivery neighbours, DyRep's
            recent edges per node. (default: :obj:`10`)
        device (torch.device, optional): Device. (default: :obj:`"cpu"`)
        **memory_kwargs: Extra keyword arguments of the memory class
            (:obj:`validate`, :obj:`storage`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    if name == "tgn":
        return build_tgn(num_nodes, msg_dim, memory_dim=memory_dim, time_dim=time_dim,
                         embedding_dim=embedding_dim, lr=lr, dropout=dropout, device=device,
                         **memory_kwargs)
    if name == "jodie":
        memory = JODIEMemory(num_nodes, msg_dim, memory_dim, time_dim, **memory_kwargs)
        gnn = TimeProjectionEmbedding(memory_dim)
    elif name == "dyrep":
        memory = DyRepMemory(num_nodes, msg_dim, memory_dim, time_dim, embedding_dim,
                             num_neighbors=num_neighbors, **memory_kwargs)
        gnn = IdentityEmbedding()
    else:
        memory = APANMemory(num_nodes, msg_dim, memory_dim, time_dim, mailbox_size=mailbox_size,
                            num_neighbors=num_neighbors, **memory_kwargs)
        gnn = IdentityEmbedding()
    memory, gnn = memory.to(device), gnn.to(device)
    link_pred = LinkPredictor(memory_dim).to(device)
    return MODELS[name](memory, gnn, link_pred, _optimizer(memory, gnn, link_pred, lr=lr))
