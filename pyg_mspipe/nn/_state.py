r"""The state of a TGN memory, apart from the modules that update it."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe import _cuda
from pyg_mspipe.nn._message_store import MessageStore


class WriteBack(NamedTuple):
    r"""One iteration's change of a :class:`MemoryState`, tensors only: any
    replica can apply it. :obj:`messages` is a :meth:`MessageStore.plan`."""
    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    messages: tuple
    t_max: Tensor


class MemoryState:
    r"""Memory, last update and pending messages of every node, their
    placement and checkpoint (see ``docs/architecture.md``). Every write
    stamps the nodes it touches with a new :attr:`clock` value in
    :attr:`version`.

    Args:
        num_nodes (int): Number of nodes.
        memory_dim (int): Memory dimensionality.
        raw_msg_dim (int): Raw message dimensionality.
        storage (torch.device, optional): :obj:`"cpu"` keeps the state in
            host memory whatever :meth:`place` asks. (default: :obj:`None`)
        store (optional): The pending-message store. (default: a
            :class:`MessageStore` with :obj:`2 * num_nodes` slots)
    """

    def __init__(self, num_nodes: int, memory_dim: int, raw_msg_dim: int,
                 storage: torch.device | None = None, store=None):
        self.num_nodes = num_nodes
        self.memory_dim = memory_dim
        self.storage = storage
        self.memory = torch.zeros(num_nodes, memory_dim)
        self.last_update = torch.zeros(num_nodes, dtype=torch.long)
        # slot v: v's messages as a source; num_nodes + v: as a destination
        self.store = MessageStore(2 * num_nodes, raw_msg_dim) if store is None else store
        #: Largest timestamp stored so far (for "sorted across batches").
        self.last_t = torch.zeros((), dtype=torch.long)
        #: Per node, the :attr:`clock` of the last write that touched it.
        self.version = torch.zeros(num_nodes, dtype=torch.long)
        #: Number of writes so far (a Python int: read without a sync).
        self.clock = 0
        self._pin()

    @property
    def device(self) -> torch.device:
        r"""Where the state lives."""
        return self.memory.device

    def changed(self, n_id: Tensor, clock: int, owner: Tensor, partner: Tensor) -> Tensor:
        r"""Whether the row of each node of :obj:`n_id`, or of a node it reads
        (:obj:`partner[k]`, read by :obj:`n_id[owner[k]]`), was written after
        :obj:`clock`: the one validity rule for prepared work."""
        version = self.version
        changed = version.index_select(0, n_id) > clock
        return changed.index_fill_(0, owner[version.index_select(0, partner) > clock], True)

    # ------------------------------------------------------------- placement
    def place(self, device: torch.device | None = None, dtype: torch.dtype | None = None):
        r"""Moves the state to :obj:`device` (not with :obj:`storage`) and
        casts its floating tensors to :obj:`dtype`."""
        if self.storage is not None:
            device = self.storage
        self.memory = self.memory.to(device, dtype)
        self.last_update = self.last_update.to(device)
        self.last_t = self.last_t.to(device)
        self.version = self.version.to(device)
        self.store.to(device=device, dtype=dtype)
        self._pin()

    def _pin(self):
        # host state pinned where CUDA is available: asynchronous copies
        if self.storage is None:
            return
        self.memory = _cuda.pin(self.memory)
        self.last_update = _cuda.pin(self.last_update)
        self.store.pin_memory()

    # ----------------------------------------------------------------- write
    def tick(self) -> int:
        r"""Advances :attr:`clock` and returns it (the stamp of a write)."""
        self.clock += 1
        return self.clock

    def write(self, n_id: Tensor, memory: Tensor, last_update: Tensor):
        r"""Sets the memory and last update of :obj:`n_id` (moved here)."""
        device = self.device
        n_id, memory, last_update = (x.to(device) for x in (n_id, memory, last_update))
        self.memory.index_copy_(0, n_id, memory.to(self.memory.dtype))
        self.last_update.index_copy_(0, n_id, last_update)
        self.version.index_fill_(0, n_id, self.tick())

    def store_messages(self, messages: tuple, t_max: Tensor):
        r"""Makes a batch's messages (a :meth:`MessageStore.plan`) the pending
        messages of their nodes."""
        messages = type(messages)(*(x.to(self.device) for x in messages))
        self.store.insert_planned(messages)
        self.last_t.copy_(torch.maximum(self.last_t, t_max.to(self.device)))
        self.tick()

    def apply(self, write_back: WriteBack):
        r"""Applies one iteration's :class:`WriteBack`."""
        self.store_messages(write_back.messages, write_back.t_max)
        self.write(write_back.n_id, write_back.memory, write_back.last_update)

    def reset(self):
        r"""The initial state: zero memory and last update, no messages."""
        self.memory.detach_()
        self.memory.zero_()
        self.last_update.zero_()
        self.last_t.zero_()
        self.store.clear()
        self.version.fill_(self.tick())

    def clear_messages(self):
        r"""Forgets every pending message."""
        self.store.clear()
        self.version.fill_(self.tick())

    # ------------------------------------------------------------ checkpoint
    def extra_state(self) -> dict:
        r"""The checkpoint beyond :obj:`memory` and :obj:`last_update`."""
        return {"store": self.store.get_extra_state(), "last_t": self.last_t.clone(),
                "node_version": self.version.clone(), "clock": self.clock}

    def load(self, memory: Tensor | None = None, last_update: Tensor | None = None,
             extra: dict | None = None):
        r"""Loads a saved state of the same shape; each part is optional (a
        PyG checkpoint has no pending messages: they stay as they are)."""
        for name, value, own in (("memory", memory, self.memory),
                                 ("last_update", last_update, self.last_update)):
            if value is not None and value.shape != own.shape:
                raise RuntimeError(f"MemoryState: checkpoint '{name}' has shape "
                                   f"{tuple(value.shape)}, this state {tuple(own.shape)}")
        if memory is not None:
            self.memory.detach_()
            self.memory.copy_(memory)
        if last_update is not None:
            self.last_update.copy_(last_update)
        if extra is not None:
            if "store" in extra:
                self.store.set_extra_state(extra["store"])
            if "last_t" in extra:
                self.last_t.copy_(extra["last_t"])
        self.version.fill_(self.tick())
        if extra is not None and "node_version" in extra:
            self.version.copy_(extra["node_version"])
            self.clock = max(int(extra["clock"]), int(self.version.max()))
