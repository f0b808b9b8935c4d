r"""PyG-style modules of the TGN memory: the :class:`TGNMemory` facade, its
:class:`MemoryState`, the update steps (:mod:`pyg_mspipe.nn.update`) and the
updaters."""
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.state import MemoryState, WriteBack
from pyg_mspipe.nn.update import EventPlan, KeptInputs, MessageInputs

__all__ = ["TGNMemory", "MemoryState", "WriteBack", "EventPlan", "KeptInputs",
           "MessageInputs"]
