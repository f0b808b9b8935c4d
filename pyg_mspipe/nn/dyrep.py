r"""The DyRep memory."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import RNNCell

from pyg_mspipe._validation import check_positive_int
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._dyrep_state import DyRepMessages, DyRepState, Neighborhood
from pyg_mspipe.nn._update import MODULE_NAMES, EventPlan, UpdateSteps
from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.embeddings import GraphAttentionEmbedding
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import DyRepMessage

__all__ = ["DyRepMemory"]


class DyRepSteps(UpdateSteps):
    r"""The update steps of a :class:`DyRepMemory`: TGN's, the messages
    :obj:`[e, h_src, h_dst]` built in :meth:`messages` (arguments as
    :class:`~pyg_mspipe.nn._update.UpdateSteps`)."""
    module_names = MODULE_NAMES + ("structural",)

    def plan(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan:
        r"""The batch's nodes and time range (reads no state)."""
        return update.plan_nodes(src, dst, t, raw_msg)

    def messages(self, state: DyRepState, plan: EventPlan, modules,
                 updated: bool) -> DyRepMessages:
        r"""The batch's :class:`DyRepMessages`, the endpoints' structural
        embeddings computed without gradient over their recent edges."""
        device = plan.src.device
        nb = state.recent.sample(plan.n_id.to(state.device))
        nb = Neighborhood(*(x.to(device) for x in nb))
        with torch.no_grad():
            x, last_update = self.neighborhood_memory(state, nb.n_id, modules, updated)
            h = structural_embedding(modules.structural, x, last_update, nb)
        # (nb.n_id is sorted and holds every endpoint)
        h_src = h.index_select(0, torch.searchsorted(nb.n_id, plan.src))
        h_dst = h.index_select(0, torch.searchsorted(nb.n_id, plan.dst))
        stored = torch.cat([plan.raw_msg.to(h.dtype), h_src, h_dst], dim=-1)
        layout = update.layout_messages(plan.src, plan.dst, plan.t, stored, self.num_nodes,
                                        self.msg_dtype)
        return DyRepMessages(layout, plan.src, plan.dst, plan.t, plan.raw_msg)

    def neighborhood_memory(self, state: DyRepState, n_id: Tensor, modules,
                            updated: bool) -> tuple[Tensor, Tensor]:
        r"""Memory and last update of :obj:`n_id`, after their pending
        messages with :obj:`updated` (rows padded), else as stored."""
        device = modules.time_enc.lin.weight.device
        state_id = n_id.to(state.device)
        if not updated:
            return (state.memory.index_select(0, state_id).to(device),
                    state.last_update.index_select(0, state_id).to(device))
        inputs = self.gather(state, update.pad_rows(state_id))
        memory, last_update = self.compute(update.move_inputs(inputs, device), modules)
        return memory[:n_id.numel()], last_update[:n_id.numel()]


def structural_embedding(structural: torch.nn.Module, x: Tensor, last_update: Tensor,
                         nb: Neighborhood, block: int = update.ROW_BLOCK) -> Tensor:
    r""":obj:`structural(...)` of the neighbourhood's nodes, nodes and edges
    padded to multiples of :obj:`block` (bit-identical rows, as
    :func:`~pyg_mspipe.nn._update.pad_rows`)."""
    num, num_e = x.size(0), nb.t.numel()
    pad_n, pad_e = -num % block, -num_e % block
    if pad_e and not pad_n:  # the extra edges need an extra node
        pad_n = block
    if pad_n:
        x = torch.cat([x, x[:1].expand(pad_n, -1)])
        last_update = torch.cat([last_update, last_update[:1].expand(pad_n)])
    edge_index, t, msg = nb.edge_index, nb.t, nb.msg
    if pad_e:
        edge_index = torch.cat([edge_index, edge_index.new_full((2, pad_e), num)], dim=1)
        t = torch.cat([t, last_update[:1].expand(pad_e).to(t.dtype)])
        msg = torch.cat([msg, msg.new_zeros(pad_e, msg.size(1))])
    return structural(x, last_update, edge_index, t, msg.to(x.dtype))[:num]


class DyRepMemory(TGNMemory):
    r"""The memory of DyRep (`"DyRep: Learning Representations over Dynamic
    Graphs" <https://openreview.net/forum?id=HyePrhR5KX>`_) in the TGN
    framework: the message of each endpoint carries the *structural
    embedding* of the other instead of its memory,
    :math:`\mathbf{m}_i = [\mathbf{s}_i \| \mathbf{h}^{struct}_j \|
    \mathbf{e}_{ij} \| \phi(t - t_i^-)]`, with an RNN updater.
    :math:`\mathbf{h}^{struct}` is the :obj:`structural`
    :class:`~pyg_mspipe.nn.GraphAttentionEmbedding` (no dropout, no
    gradient) over each endpoint's most recent edges, which the memory keeps
    itself, so :meth:`update_state` takes the events alone (see
    :doc:`models`).

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Edge feature size of the events.
        memory_dim (int): Memory size.
        time_dim (int): Time encoding size.
        embedding_dim (int): Structural embedding size (even: two heads).
        num_neighbors (int, optional): Recent edges per node the structural
            embedding attends over. (default: :obj:`10`)
        **kwargs: :obj:`validate`, :obj:`storage` of :class:`TGNMemory`.
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 embedding_dim: int, num_neighbors: int = 10, **kwargs):
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) \
                or embedding_dim <= 0 or embedding_dim % 2:
            raise ValueError(f"'embedding_dim' must be a positive even int (got "
                             f"{embedding_dim!r})")
        check_positive_int("num_neighbors", num_neighbors)
        self.embedding_dim = embedding_dim  # (read by _make_state)
        self.num_neighbors = num_neighbors
        message = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim, side="src")
        super().__init__(num_nodes, raw_msg_dim, memory_dim, time_dim, message,
                         LastAggregator(), updater=RNNCell(message.out_channels, memory_dim),
                         **kwargs)
        self.msg_d_module = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim,
                                         side="dst")
        self.structural = GraphAttentionEmbedding(memory_dim, embedding_dim, raw_msg_dim,
                                                  self.time_enc, dropout=0.0)

    def _make_state(self) -> DyRepState:
        # the store holds [e, h_src, h_dst]
        return DyRepState(self.num_nodes, self.memory_dim,
                          self.raw_msg_dim + 2 * self.embedding_dim, self.raw_msg_dim,
                          self.num_neighbors, self.storage)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        super().reset_parameters()
        if hasattr(self, "structural"):  # (not yet built when __init__ resets)
            self.structural.reset_parameters()

    def _make_steps(self) -> DyRepSteps:
        return DyRepSteps(False, self.num_nodes, self.state.store)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim}, embedding_dim={self.embedding_dim}, "
                f"num_neighbors={self.num_neighbors})")
