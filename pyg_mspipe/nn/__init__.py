r"""The memory models and the PyG-compatible modules around them: PyG's
:class:`TGNMemory`, :class:`LastNeighborLoader`, message, aggregator and time
encoder, the JODIE, DyRep and APAN memories and their parts."""
from pyg_mspipe.nn.aggregators import LastAggregator, MeanAggregator
from pyg_mspipe.nn.apan import APANMemory
from pyg_mspipe.nn.dyrep import DyRepMemory
from pyg_mspipe.nn.embeddings import (
    GraphAttentionEmbedding,
    IdentityEmbedding,
    TimeProjectionEmbedding,
)
from pyg_mspipe.nn.jodie import JODIEMemory
from pyg_mspipe.nn.last_neighbor_loader import LastNeighborLoader
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import DyRepMessage, IdentityMessage, MailMessage
from pyg_mspipe.nn.recent_neighbors import RecentNeighbors, RecentNeighborSampler
from pyg_mspipe.nn.temporal_attention import TemporalAttentionEmbedding
from pyg_mspipe.nn.time_encoder import TimeEncoder
from pyg_mspipe.nn.updaters import MailboxAttention

__all__ = ["TGNMemory", "JODIEMemory", "DyRepMemory", "APANMemory", "LastNeighborLoader",
           "IdentityMessage", "DyRepMessage", "MailMessage", "LastAggregator",
           "MeanAggregator", "TimeEncoder", "MailboxAttention", "GraphAttentionEmbedding",
           "TimeProjectionEmbedding", "IdentityEmbedding",
           "RecentNeighborSampler", "RecentNeighbors", "TemporalAttentionEmbedding"]
