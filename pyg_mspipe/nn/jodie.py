r"""The JODIE memory, as the TGN framework configures it."""
from __future__ import annotations

from torch.nn import RNNCell

from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import IdentityMessage

__all__ = ["JODIEMemory"]


class JODIEMemory(TGNMemory):
    r"""The memory of JODIE (`"Predicting Dynamic Embedding Trajectory in
    Temporal Interaction Networks" <https://arxiv.org/abs/1908.01207>`_) in
    the TGN framework (TGN's ``--memory_updater rnn``, TGL's
    ``config/JODIE.yml``): both endpoints of an event get a message
    :math:`[\mathbf{s}_i \| \mathbf{s}_j \| \mathbf{e}_{ij} \| \phi(t - t_i^-)]`,
    each node keeps its last one, and an RNN updates the memory,
    :math:`\mathbf{s}_i' = \tanh(\mathbf{W}_{ih} \mathbf{m}_i + \mathbf{b}_{ih}
    + \mathbf{W}_{hh} \mathbf{s}_i + \mathbf{b}_{hh})`.

    A :class:`~pyg_mspipe.TGNMemory` with a :class:`torch.nn.RNNCell`
    updater; pair it with :class:`~pyg_mspipe.nn.TimeProjectionEmbedding`.

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Edge feature size.
        memory_dim (int): Memory size.
        time_dim (int): Time encoding size.
        **kwargs: :obj:`validate`, :obj:`storage` of :class:`TGNMemory`.
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 **kwargs):
        message = IdentityMessage(raw_msg_dim, memory_dim, time_dim)
        super().__init__(num_nodes, raw_msg_dim, memory_dim, time_dim, message,
                         LastAggregator(), updater=RNNCell(message.out_channels, memory_dim),
                         **kwargs)
