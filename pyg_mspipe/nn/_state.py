r"""The state of a TGN memory, apart from the modules that update it."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe import _cuda
from pyg_mspipe.nn._message_store import MessageStore


class WriteBack(NamedTuple):
    r"""One iteration's change of a :class:`MemoryState`: a plain value
    (tensors only) that any replica of the state can apply.

    Args:
        n_id (torch.Tensor): Nodes whose memory changes, :obj:`[n]`.
        memory (torch.Tensor): Their new memory, :obj:`[n, memory_dim]`.
        last_update (torch.Tensor): Their new last update, :obj:`[n]`.
        messages (tuple): The batch's new pending messages, laid out by
            :meth:`MessageStore.plan` (slot :obj:`v` for :obj:`v` as a source,
            :obj:`num_nodes + v` as a destination).
        t_max (torch.Tensor): The batch's largest timestamp (scalar).
    """
    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    messages: tuple
    t_max: Tensor


class MemoryState:
    r"""Memory, last update and pending messages of every node, where they
    live, and how to checkpoint them. No modules and no autograd logic: the
    update steps of :mod:`pyg_mspipe.nn._update` read it, and change it only
    through :meth:`write`, :meth:`store_messages` and :meth:`apply`.

    Every write also stamps the nodes it touches with a new value of
    :attr:`clock` in :attr:`version`, so a reader that gathered rows at clock
    :obj:`c` knows a node changed since then iff :obj:`version[v] > c`.

    Args:
        num_nodes (int): Number of nodes.
        memory_dim (int): Memory dimensionality.
        raw_msg_dim (int): Raw message dimensionality.
        storage (torch.device, optional): :obj:`None`: the state follows
            :meth:`place` (the model's device). :obj:`"cpu"`: the state stays
            in host memory (pinned when CUDA is available), whatever device
            the model moves to. (default: :obj:`None`)
        store (optional): The pending-message store, any object with the
            methods of :class:`MessageStore` this class calls
            (:obj:`insert_planned`, :obj:`clear`, :obj:`to`, :obj:`pin_memory`,
            :obj:`get_extra_state`, :obj:`set_extra_state`), e.g. APAN's
            :class:`~pyg_mspipe.nn.Mailbox`. (default: a :class:`MessageStore`
            with slot :obj:`v` for :obj:`v`'s messages as a source and
            :obj:`num_nodes + v` as a destination)
    """

    def __init__(self, num_nodes: int, memory_dim: int, raw_msg_dim: int,
                 storage: torch.device | None = None, store=None):
        self.num_nodes = num_nodes
        self.memory_dim = memory_dim
        self.storage = storage
        self.memory = torch.zeros(num_nodes, memory_dim)
        self.last_update = torch.zeros(num_nodes, dtype=torch.long)
        # Pending messages: slot v holds v's messages as a source (PyG's
        # msg_s_store), slot num_nodes + v those as a destination (msg_d_store).
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
        r"""Whether what the update of each node of :obj:`n_id` reads changed
        since the clock was :obj:`clock`: the node's own row, or the row of a
        node it reads (:obj:`partner[k]`, read by :obj:`n_id[owner[k]]`).
        The one rule for "is work prepared at clock :obj:`clock` still good".

        Args:
            n_id (torch.Tensor): Nodes, on the state's device.
            clock (int): The clock when the work read the state.
            owner (torch.Tensor): Positions in :obj:`n_id`.
            partner (torch.Tensor): The nodes they read, on the state's device.
        """
        version = self.version
        changed = version.index_select(0, n_id) > clock
        return changed.index_fill_(0, owner[version.index_select(0, partner) > clock], True)

    # ------------------------------------------------------------- placement
    def place(self, device: torch.device | None = None, dtype: torch.dtype | None = None):
        r"""Moves the state to :obj:`device` and casts its floating tensors
        to :obj:`dtype` (what :meth:`torch.nn.Module.to` asks of the module
        holding it). With :obj:`storage="cpu"` only the cast applies."""
        if self.storage is not None:
            device = self.storage
        self.memory = self.memory.to(device, dtype)
        self.last_update = self.last_update.to(device)
        self.last_t = self.last_t.to(device)
        self.version = self.version.to(device)
        self.store.to(device=device, dtype=dtype)
        self._pin()

    def _pin(self):
        # Host-resident state: pinned where CUDA is available, so that copies
        # to and from the GPU run asynchronously.
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
        r"""What :obj:`memory` and :obj:`last_update` do not hold: the
        pending messages (:obj:`"store"`), the largest stored timestamp and
        the write versions."""
        return {"store": self.store.get_extra_state(), "last_t": self.last_t.clone(),
                "node_version": self.version.clone(), "clock": self.clock}

    def load(self, memory: Tensor | None = None, last_update: Tensor | None = None,
             extra: dict | None = None):
        r"""Loads tensors saved from a state of the same shape; each part is
        optional (a checkpoint of PyG's ``TGNMemory`` has no pending
        messages: they stay as they are, as loading it into PyG would)."""
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
