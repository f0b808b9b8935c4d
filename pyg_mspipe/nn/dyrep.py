r"""The DyRep memory, as the TGN framework configures it: its messages carry
the structural embedding of the other endpoint, computed by the memory
itself from the memory the batch's update starts from."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import RNNCell

from pyg_mspipe._validation import check_index
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState
from pyg_mspipe.nn._update import MODULE_NAMES, EventPlan, UpdateSteps
from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.embeddings import GraphAttentionEmbedding
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import DyRepMessage

__all__ = ["Neighborhood", "DyRepMemory"]


class Neighborhood(NamedTuple):
    r"""A batch's sampled temporal neighbourhood: what a
    :class:`~pyg_mspipe.LastNeighborLoader` returns for the batch's nodes,
    with the sampled edges' times and features.

    Args:
        n_id (torch.Tensor): The sampled nodes, :obj:`[n]` (every endpoint of
            the batch's events among them).
        edge_index (torch.Tensor): The sampled edges as positions in
            :obj:`n_id`, :obj:`[2, E]` (row 0 the neighbour, row 1 the node).
        t (torch.Tensor): The edges' times, :obj:`[E]`.
        msg (torch.Tensor): The edges' features, :obj:`[E, edge_dim]`.
    """
    n_id: Tensor
    edge_index: Tensor
    t: Tensor
    msg: Tensor


class DyRepContext(NamedTuple):
    r"""What a DyRep write-back reads besides the events and the state (the
    :attr:`~pyg_mspipe.nn._update.EventPlan.context` of its plan)."""
    neighborhood: Neighborhood
    src_pos: Tensor  #: position of each event's source in :obj:`neighborhood.n_id`
    dst_pos: Tensor  #: position of each event's destination


class DyRepSteps(UpdateSteps):
    r"""The update steps of a :class:`DyRepMemory`: TGN's, except that a
    batch's messages are built in the write-back, from the state the batch's
    update starts from (:meth:`messages`). There the memory of the
    neighbourhood (after its pending messages) goes through the memory's
    :obj:`structural` attention, and each event stores :obj:`[e, h_src,
    h_dst]`. In a pipelined epoch that state is the committed one, so the
    messages are the sequential run's whatever the staleness of the
    training loop's reads.

    Args:
        kept_only (bool): Only each node's kept message is read (never, with
            :class:`~pyg_mspipe.nn.DyRepMessage`).
        num_nodes (int): Number of nodes.
        store (MessageStore): The state's store (its message dtype).
    """
    module_names = MODULE_NAMES + ("structural",)

    def plan(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan:
        r"""The batch's nodes and time range (reads no state; the messages
        are laid out in :meth:`messages`)."""
        return update.plan_nodes(src, dst, t, raw_msg)

    def messages(self, state: MemoryState, plan: EventPlan, modules, updated: bool) -> tuple:
        r"""The batch's messages :obj:`[e, h_src, h_dst]`, laid out for the
        store, the structural embeddings :math:`\mathbf{h}` computed (without
        gradient) from the memory of :obj:`plan.context`'s neighbourhood in
        :obj:`state`: after its pending messages with :obj:`updated`
        (training), as it is otherwise (evaluation)."""
        context: DyRepContext = plan.context
        nb = context.neighborhood
        with torch.no_grad():
            x, last_update = self.neighborhood_memory(state, nb.n_id, modules, updated)
            h = structural_embedding(modules.structural, x, last_update, nb)
        stored = torch.cat([plan.raw_msg.to(h.dtype), h.index_select(0, context.src_pos),
                            h.index_select(0, context.dst_pos)], dim=-1)
        return update.layout_messages(plan.src, plan.dst, plan.t, stored, self.num_nodes,
                                      self.msg_dtype)

    def neighborhood_memory(self, state: MemoryState, n_id: Tensor, modules,
                            updated: bool) -> tuple[Tensor, Tensor]:
        r"""Memory and last update of :obj:`n_id` on the modules' device:
        after their pending messages (:meth:`gather` then :meth:`compute`,
        rows padded with :func:`~pyg_mspipe.nn._update.pad_rows`) with
        :obj:`updated`, else as stored."""
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
    r""":obj:`structural(x, last_update, edge_index, t, msg)` of the
    neighbourhood's nodes, with nodes and edges padded to multiples of
    :obj:`block` (the extra nodes copies of the first one, the extra edges
    between extra nodes; their rows are dropped). As
    :func:`~pyg_mspipe.nn._update.pad_rows`: every row is then the value
    bit for bit, whatever the number of threads and rows around it."""
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
    framework (the TGN authors' ``--memory_updater rnn --dyrep
    --use_destination_embedding_in_message``): the message of each endpoint
    carries the *structural embedding* of the other instead of its memory,
    :math:`\mathbf{m}_i = [\mathbf{s}_i \| \mathbf{h}^{struct}_j \|
    \mathbf{e}_{ij} \| \phi(t - t_i^-)]`; each node keeps its last message
    and an RNN updates the memory.

    :math:`\mathbf{h}^{struct}` is the memory's :obj:`structural` module (a
    :class:`~pyg_mspipe.nn.GraphAttentionEmbedding` over the batch's
    sampled neighbourhood, sharing :obj:`time_enc`, without dropout), run
    without gradient on the neighbourhood's memory after its pending
    messages, when the batch's update is applied: in a pipelined epoch from
    the committed memory, so that stale reads of the training loop change
    no message. As in the TGN authors' code its parameters get no gradient
    (the messages enter the next update detached).

    :meth:`update_state` takes the batch's :class:`Neighborhood` besides
    the events and is otherwise :meth:`TGNMemory.update_state`: the same
    pipeline and checkpoints. The store holds :obj:`[e, h_src, h_dst]`
    (width :obj:`raw_msg_dim + 2 * embedding_dim`).

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Edge feature size of the events.
        memory_dim (int): Memory size.
        time_dim (int): Time encoding size.
        embedding_dim (int): Structural embedding size (even: two heads).
        **kwargs: :obj:`validate`, :obj:`storage` of :class:`TGNMemory`.
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 embedding_dim: int, **kwargs):
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) \
                or embedding_dim <= 0 or embedding_dim % 2:
            raise ValueError(f"'embedding_dim' must be a positive even int (got "
                             f"{embedding_dim!r})")
        self.embedding_dim = embedding_dim  # (read by _make_state)
        message = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim, side="src")
        super().__init__(num_nodes, raw_msg_dim, memory_dim, time_dim, message,
                         LastAggregator(), updater=RNNCell(message.out_channels, memory_dim),
                         **kwargs)
        self.msg_d_module = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim,
                                         side="dst")
        self.structural = GraphAttentionEmbedding(memory_dim, embedding_dim, raw_msg_dim,
                                                  self.time_enc, dropout=0.0)

    def _make_state(self) -> MemoryState:
        # the store holds [e, h_src, h_dst]
        return MemoryState(self.num_nodes, self.memory_dim,
                           self.raw_msg_dim + 2 * self.embedding_dim, self.storage)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        super().reset_parameters()
        if hasattr(self, "structural"):  # (not yet built when __init__ resets)
            self.structural.reset_parameters()

    def _make_steps(self) -> DyRepSteps:
        return DyRepSteps(False, self.num_nodes, self.state.store)

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor,
                     neighborhood: Neighborhood):
        r"""Updates the memory with the events :obj:`(src, dst, t, raw_msg)`
        (as :meth:`TGNMemory.update_state`), whose endpoints' sampled
        neighbourhood is :obj:`neighborhood` (the structural embeddings of
        the messages are computed on it).

        Args:
            src, dst, t (torch.Tensor): The events, :obj:`[B]`.
            raw_msg (torch.Tensor): Edge features, :obj:`[B, raw_msg_dim]`.
            neighborhood (Neighborhood): The batch's sampled neighbourhood.
        """
        self._update(src, dst, t, raw_msg, context=self.context(src, dst, neighborhood))

    def context(self, src: Tensor, dst: Tensor, neighborhood: Neighborhood) -> DyRepContext:
        r"""Checks :obj:`neighborhood` (with :obj:`validate`: every endpoint
        among its nodes) and finds the endpoints in it; reads no state."""
        if not isinstance(neighborhood, Neighborhood):
            raise TypeError(f"'neighborhood' must be a Neighborhood(n_id, edge_index, t, msg) "
                            f"(got {type(neighborhood).__name__})")
        n_id, edge_index, t, msg = neighborhood
        if self.validate:  # (the events' own checks follow in _plan)
            check_index("src", src, self.num_nodes, device=self.device)
            check_index("dst", dst, self.num_nodes, device=self.device)
        check_index("neighborhood.n_id", n_id, self.num_nodes, device=self.device)
        if n_id.numel() == 0 and src.numel():
            raise ValueError("'neighborhood.n_id' must contain every source and destination "
                             "of the batch (got no nodes)")
        num_e = t.numel() if isinstance(t, Tensor) else -1
        for name, x, shape in (("edge_index", edge_index, (2, num_e)), ("t", t, (num_e,)),
                               ("msg", msg, (num_e, self.raw_msg_dim))):
            if not isinstance(x, Tensor) or tuple(x.shape) != shape or x.device != n_id.device:
                got = (tuple(x.shape), str(x.device)) if isinstance(x, Tensor) \
                    else type(x).__name__
                raise ValueError(f"'neighborhood.{name}' must have shape {list(shape)} on "
                                 f"{n_id.device}, E the number of sampled edges (got {got})")
        if self.validate and edge_index.numel() and (
                bool(edge_index.min() < 0) or bool(edge_index.max() >= n_id.numel())):
            raise ValueError(f"'neighborhood.edge_index' must hold positions in "
                             f"'neighborhood.n_id' ([0, {n_id.numel()}))")
        # positions by binary search in the sorted nodes (no state touched)
        ends = torch.cat([src, dst]).to(n_id.device)
        sorted_id, perm = n_id.sort()
        pos = perm.index_select(0, torch.searchsorted(sorted_id, ends).clamp_(
            max=max(n_id.numel() - 1, 0)))
        if self.validate and pos.numel() and not bool(
                (n_id.index_select(0, pos) == ends).all()):
            raise ValueError("'neighborhood.n_id' must contain every source and destination "
                             "of the batch")
        return DyRepContext(neighborhood, pos[:src.numel()], pos[src.numel():])
