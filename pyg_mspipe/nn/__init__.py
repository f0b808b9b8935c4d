r"""PyG-style modules of the memory models: the :class:`TGNMemory` facade,
its :class:`MemoryState`, the update steps (:mod:`pyg_mspipe.nn.update`),
and the composable parts of JODIE, DyRep and APAN (updaters, embeddings,
messages, the :math:`k`-slot mailbox)."""
from pyg_mspipe.nn.apan import APANInputs, APANMemory, APANSteps
from pyg_mspipe.nn.dyrep import DyRepContext, DyRepMemory, DyRepSteps, Neighborhood
from pyg_mspipe.nn.embeddings import (
    GraphAttentionEmbedding,
    IdentityEmbedding,
    TimeProjectionEmbedding,
)
from pyg_mspipe.nn.jodie import JODIEMemory
from pyg_mspipe.nn.mailbox import Delivery, Mailbox, MailboxState
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import DyRepMessage, MailMessage
from pyg_mspipe.nn.recent_neighbors import RecentNeighbors, RecentNeighborSampler
from pyg_mspipe.nn.state import MemoryState, WriteBack
from pyg_mspipe.nn.temporal_attention import TemporalAttentionEmbedding
from pyg_mspipe.nn.update import EventPlan, KeptInputs, MessageInputs, UpdateSteps
from pyg_mspipe.nn.updaters import MailboxAttention

__all__ = ["TGNMemory", "JODIEMemory", "DyRepMemory", "APANMemory", "MemoryState",
           "MailboxState", "Mailbox", "Delivery", "WriteBack", "EventPlan", "KeptInputs",
           "MessageInputs", "APANInputs", "UpdateSteps", "APANSteps", "MailboxAttention",
           "TimeProjectionEmbedding", "IdentityEmbedding", "GraphAttentionEmbedding",
           "DyRepMessage", "MailMessage", "Neighborhood", "DyRepContext", "DyRepSteps",
           "RecentNeighborSampler", "RecentNeighbors", "TemporalAttentionEmbedding"]
