r"""APAN's state: a mailbox of the :math:`k` most recent mails of every
node, and the most recent neighbours mails are delivered to."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from pyg_mspipe import _cuda
from pyg_mspipe.nn._state import MemoryState
from pyg_mspipe.nn.last_neighbor_loader import LastNeighborLoader


class Delivery(NamedTuple):
    r"""One batch's mails, one per receiving node (the :obj:`messages` of an
    APAN :class:`~pyg_mspipe.nn.WriteBack`): sorted unique :obj:`receivers`,
    their new :obj:`mail` and its time :obj:`t`, and the batch's :obj:`src`
    and :obj:`dst`, inserted into the neighbour table after the delivery."""
    receivers: Tensor
    mail: Tensor
    t: Tensor
    src: Tensor
    dst: Tensor


class Mailbox:
    r"""The :math:`k` most recent mails of every node in a ring of slots
    (TGL's ``mailbox``, ``mailbox_ts``, ``next_mail_pos``), and each node's
    :obj:`num_neighbors` most recent neighbours, to whom APAN delivers the
    mails of a node's events."""

    #: :attr:`t` of a slot without a mail (below any timestamp).
    EMPTY_T = torch.iinfo(torch.long).min

    def __init__(self, num_nodes: int, size: int, mail_dim: int, num_neighbors: int):
        for name, value in (("size", size), ("num_neighbors", num_neighbors)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        self.num_nodes = num_nodes
        self.size = size
        self.mail_dim = mail_dim
        self.num_neighbors = num_neighbors
        self.mail = torch.zeros(num_nodes, size, mail_dim)
        self.t = torch.full((num_nodes, size), self.EMPTY_T, dtype=torch.long)
        self.pos = torch.zeros(num_nodes, dtype=torch.long)  #: next slot per node
        self.recent = LastNeighborLoader(num_nodes, num_neighbors, validate=False)

    @property
    def device(self) -> torch.device:
        r"""Where the mailbox lives."""
        return self.mail.device

    def read(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""Copies of the mails :obj:`[n, k, mail_dim]` and their times
        :obj:`[n, k]` (:attr:`EMPTY_T` for an empty slot) of :obj:`n_id`."""
        return self.mail.index_select(0, n_id), self.t.index_select(0, n_id)

    def neighbors(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""The most recent neighbours of :obj:`n_id`, :obj:`[n,
        num_neighbors]`, and which entries hold one."""
        return (self.recent.neighbors.index_select(0, n_id),
                self.recent.e_id.index_select(0, n_id) >= 0)

    def insert_planned(self, delivery: Delivery):
        r"""Writes a :class:`Delivery`: each receiver's mail goes into its
        next slot (overwriting its oldest mail once :math:`k` are held), then
        the batch's events enter the neighbour table."""
        receivers = delivery.receivers
        if receivers.numel():
            slot = self.pos.index_select(0, receivers)
            flat = receivers * self.size + slot
            self.mail.view(-1, self.mail_dim).index_copy_(0, flat,
                                                          delivery.mail.to(self.mail.dtype))
            self.t.view(-1).index_copy_(0, flat, delivery.t)
            self.pos.index_copy_(0, receivers, (slot + 1).remainder_(self.size))
        if delivery.src.numel():
            self.recent._insert_delta(delivery.src, delivery.dst)

    def clear(self):
        r"""Forgets every mail and neighbour."""
        self.mail.zero_()
        self.t.fill_(self.EMPTY_T)
        self.pos.zero_()
        self.recent.reset_state()

    def to(self, device: torch.device | None = None, dtype: torch.dtype | None = None):
        r"""Moves the mailbox to :obj:`device`, mails cast to :obj:`dtype`."""
        self.mail = self.mail.to(device, dtype)
        self.t = self.t.to(device)
        self.pos = self.pos.to(device)
        self.recent = self.recent._clone(device)
        return self

    def pin_memory(self) -> Mailbox:
        r"""Moves the mails to pinned host memory (nothing without CUDA)."""
        self.mail, self.t, self.pos = (_cuda.pin(x)
                                       for x in (self.mail, self.t, self.pos))
        return self

    def get_extra_state(self) -> dict[str, Any]:
        r"""Copies of every tensor (for checkpoints)."""
        return {"version": 1, "mail": self.mail.clone(), "t": self.t.clone(),
                "pos": self.pos.clone(), "recent": self.recent.state_dict()}

    def set_extra_state(self, state: dict[str, Any]):
        r"""Loads what :meth:`get_extra_state` saved."""
        if not isinstance(state, dict) or state.get("version") != 1 or "mail" not in state:
            raise RuntimeError("Mailbox: unsupported extra state in checkpoint")
        if state["mail"].shape != self.mail.shape:
            raise RuntimeError(f"Mailbox: checkpoint mails have shape "
                               f"{tuple(state['mail'].shape)}, this mailbox "
                               f"{tuple(self.mail.shape)}")
        self.recent.load_state_dict(state["recent"])
        self.mail.copy_(state["mail"])
        self.t.copy_(state["t"])
        self.pos.copy_(state["pos"])

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, size={self.size}, "
                f"mail_dim={self.mail_dim}, num_neighbors={self.num_neighbors})")


class MailboxState(MemoryState):
    r"""A :class:`~pyg_mspipe.nn.MemoryState` whose pending messages are a
    :class:`Mailbox` of :obj:`size` mails per node; storing a
    :class:`Delivery` stamps its receivers as :meth:`write` stamps the
    nodes it writes."""

    def __init__(self, num_nodes: int, memory_dim: int, mail_dim: int, size: int,
                 num_neighbors: int, storage: torch.device | None = None):
        super().__init__(num_nodes, memory_dim, mail_dim, storage,
                         store=Mailbox(num_nodes, size, mail_dim, num_neighbors))

    def store_messages(self, messages: Delivery, t_max: Tensor):
        r"""Delivers a batch's mails (a :class:`Delivery`)."""
        messages = Delivery(*(x.to(self.device) for x in messages))
        super().store_messages(messages, t_max)  # (its move is then a no-op)
        self.version.index_fill_(0, messages.receivers, self.clock)
