r"""The DyRep memory, as the TGN framework configures it."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import RNNCell

from pyg_mspipe.aggregators import LastAggregator
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import DyRepMessage

__all__ = ["DyRepMemory"]


class DyRepMemory(TGNMemory):
    r"""The memory of DyRep (`"DyRep: Learning Representations over Dynamic
    Graphs" <https://openreview.net/forum?id=HyePrhR5KX>`_) in the TGN
    framework (the TGN authors' ``--memory_updater rnn --dyrep
    --use_destination_embedding_in_message``, TGB's ``DyRepMemory``): the
    message of each endpoint carries the *structural embedding* of the other
    (DyRep's attention over its neighbourhood, computed by the caller's
    embedding module in the event's batch) instead of its memory,
    :math:`\mathbf{m}_i = [\mathbf{s}_i \| \mathbf{h}^{struct}_j \|
    \mathbf{e}_{ij} \| \phi(t - t_i^-)]`; each node keeps its last message
    and an RNN updates the memory.

    :meth:`update_state` takes the two endpoints' embeddings besides the
    events, stores them (detached, as the TGN authors' code does) with the
    raw message, and is otherwise :meth:`TGNMemory.update_state`: the same
    pipeline and checkpoints. :attr:`raw_msg_dim` is the stored width
    :obj:`edge_dim + 2 * embedding_dim`; :attr:`edge_dim` the events'.

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Edge feature size of the events.
        memory_dim (int): Memory size.
        time_dim (int): Time encoding size.
        embedding_dim (int): Structural embedding size.
        **kwargs: :obj:`validate`, :obj:`storage` of :class:`TGNMemory`.
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 embedding_dim: int, **kwargs):
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) \
                or embedding_dim <= 0:
            raise ValueError(f"'embedding_dim' must be a positive int (got {embedding_dim!r})")
        message = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim, side="src")
        super().__init__(num_nodes, raw_msg_dim + 2 * embedding_dim, memory_dim, time_dim,
                         message, LastAggregator(),
                         updater=RNNCell(message.out_channels, memory_dim), **kwargs)
        self.msg_d_module = DyRepMessage(raw_msg_dim, memory_dim, embedding_dim, time_dim,
                                         side="dst")
        self.edge_dim = raw_msg_dim
        self.embedding_dim = embedding_dim

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor,
                     src_emb: Tensor, dst_emb: Tensor):
        r"""Updates the memory with the events :obj:`(src, dst, t, raw_msg)`
        (as :meth:`TGNMemory.update_state`) whose endpoints had the
        structural embeddings :obj:`src_emb` and :obj:`dst_emb`
        (:obj:`[B, embedding_dim]` each, detached here).

        Args:
            src, dst, t (torch.Tensor): The events, :obj:`[B]`.
            raw_msg (torch.Tensor): Edge features, :obj:`[B, edge_dim]`.
            src_emb, dst_emb (torch.Tensor): The endpoints' embeddings.
        """
        for name, emb in (("src_emb", src_emb), ("dst_emb", dst_emb)):
            if not isinstance(emb, Tensor) or emb.dim() != 2 \
                    or emb.size(0) != src.numel() or emb.size(1) != self.embedding_dim:
                shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
                raise ValueError(f"'{name}' must have shape [{src.numel()}, "
                                 f"{self.embedding_dim}] (got {shape})")
        if not isinstance(raw_msg, Tensor) or raw_msg.dim() != 2 \
                or raw_msg.size(-1) != self.edge_dim:
            shape = tuple(raw_msg.shape) if isinstance(raw_msg, Tensor) else type(raw_msg).__name__
            raise ValueError(f"'raw_msg' must have shape [B, {self.edge_dim}] (got {shape})")
        stored = torch.cat([raw_msg, src_emb.detach().to(raw_msg.dtype),
                            dst_emb.detach().to(raw_msg.dtype)], dim=-1)
        return super().update_state(src, dst, t, stored)
