r"""The APAN memory."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_mspipe._scatter import scatter_max_long
from pyg_mspipe.nn._apan_mailbox import Delivery, Mailbox, MailboxState
from pyg_mspipe.nn._state import MemoryState, WriteBack
from pyg_mspipe.nn._update import MODULE_NAMES, EventPlan, plan_nodes
from pyg_mspipe.nn.aggregators import LastAggregator
from pyg_mspipe.nn.memory import TGNMemory
from pyg_mspipe.nn.messages import MailMessage
from pyg_mspipe.nn.updaters import MailboxAttention

__all__ = ["APANMemory"]


class APANInputs(NamedTuple):
    r"""What the update of :math:`n` nodes of an :class:`APANMemory` reads
    (copies, see :meth:`APANSteps.gather`)."""
    memory: Tensor  #: the nodes' memory, [n, d]
    mail: Tensor  #: their mails, [n, k, mail_dim]
    mail_t: Tensor  #: the mails' times (Mailbox.EMPTY_T: empty slot), [n, k]
    last_update: Tensor  #: their last update, [n]


class APANSteps:
    r"""The update steps of an :class:`APANMemory`: attention over each
    node's mailbox in :meth:`compute`; the batch's mails built from the
    updated memories and delivered to the endpoints and their most recent
    neighbours in :meth:`write_back` (see :doc:`models`).

    Args:
        num_nodes (int): Number of nodes.
    """
    module_names = MODULE_NAMES[:-1] + ("updater",)

    def __init__(self, num_nodes: int):
        self.num_nodes = num_nodes

    def plan(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan:
        r"""The batch's nodes and time range (reads no state)."""
        return plan_nodes(src, dst, t, raw_msg)

    def gather(self, state: MemoryState, n_id: Tensor) -> APANInputs:
        r"""Memory, mails and last update of :obj:`n_id` (copies)."""
        mail, mail_t = state.store.read(n_id)
        return APANInputs(state.memory.index_select(0, n_id), mail, mail_t,
                          state.last_update.index_select(0, n_id))

    def compute(self, inputs: APANInputs, modules) -> tuple[Tensor, Tensor]:
        r"""Updated memory and last update (differentiable, reads no state)."""
        memory, mail, mail_t, last_update = inputs
        n, k = mail_t.shape
        valid = mail_t != Mailbox.EMPTY_T
        newest = mail_t.amax(dim=1) if k else last_update
        has = valid.any(dim=1)
        rel = torch.where(valid, newest.unsqueeze(1) - mail_t, mail_t.new_zeros(()))
        t_enc = modules.time_enc(rel.view(-1).to(memory.dtype)).view(n, k, -1)
        out = modules.updater(memory, mail.to(memory.dtype), t_enc, valid)
        return (torch.where(has.unsqueeze(1), out, memory),
                torch.where(has, newest, last_update))

    def partners(self, state: MemoryState, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""None: a node's update reads its own rows only (deliveries stamp
        their receivers)."""
        empty = n_id.new_empty(0)
        return empty, empty

    def write_back(self, state: MemoryState, plan: EventPlan, memory: Tensor,
                   last_update: Tensor, modules) -> WriteBack:
        r"""The batch's :class:`~pyg_mspipe.nn.WriteBack`: the new memory of
        :obj:`plan.n_id` and the :class:`~pyg_mspipe.nn.Delivery` of its
        mails (to the neighbours :obj:`state` holds before this batch)."""
        src, dst, t, raw = plan.src, plan.dst, plan.t, plan.raw_msg
        num = src.numel()
        dev = state.device
        z = memory.detach()
        z_src = z.index_select(0, torch.searchsorted(plan.n_id, src))
        z_dst = z.index_select(0, torch.searchsorted(plan.n_id, dst))
        raw = raw.to(z.dtype)
        mail_src = modules.msg_s_module(z_src, z_dst, raw)
        mail_dst = modules.msg_d_module(z_dst, z_src, raw)
        event = torch.arange(num, device=src.device)
        # key 4 * event + kind (own mails 2, 3; deliveries 0, 1): the receiver
        # keeps its latest event's mail, its own before a delivered one
        receivers, mails, keys = [src, dst], [mail_src, mail_dst], [4 * event + 2, 4 * event + 3]
        for kind, (ends, own_mail) in enumerate(((src, mail_src), (dst, mail_dst))):
            nbr, has = state.store.neighbors(ends.to(dev))
            row, col = has.nonzero().unbind(1)
            row = row.to(src.device)
            receivers.append(nbr[row.to(dev), col].to(src.device))
            mails.append(own_mail.index_select(0, row))
            keys.append(4 * row + kind)
        receivers, mails, keys = torch.cat(receivers), torch.cat(mails), torch.cat(keys)
        uniq, inv = receivers.unique(return_inverse=True)
        combined = modules.aggr_module(mails, inv, keys, uniq.numel())
        mail_t = t.index_select(0, torch.div(scatter_max_long(keys, inv, uniq.numel()), 4,
                                             rounding_mode="floor"))
        return WriteBack(plan.n_id, memory, last_update,
                         Delivery(uniq, combined, mail_t, src, dst), plan.t_max)


def _updater_keys(module, state_dict, prefix, *args):
    # (checkpoints of earlier versions kept the attention under PyG's "gru")
    old = prefix + "gru."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "updater." + key[len(old):]] = state_dict.pop(key)


class APANMemory(TGNMemory):
    r"""The APAN memory (`"APAN: Asynchronous Propagation Attention Network
    for Real-time Temporal Graph Embedding" <https://arxiv.org/abs/2011.11545>`_,
    as TGL and MSPipe configure it): every node holds its memory and a
    mailbox of its :math:`k` most recent mails; :meth:`forward` attends over
    the mailbox (:class:`~pyg_mspipe.nn.MailboxAttention`), and
    :meth:`update_state` delivers each event's mails, built from the updated
    memories, to its endpoints and their :obj:`num_neighbors` most recent
    neighbours. The mailbox is not emptied by an update, and evaluation mode
    updates like training mode. Otherwise a :class:`~pyg_mspipe.TGNMemory`:
    the same methods, checkpoints and pipeline (see :doc:`models`).

    Args:
        num_nodes (int): Number of nodes.
        raw_msg_dim (int): Edge feature size.
        memory_dim (int): Memory size.
        time_dim (int): Time encoding size.
        mailbox_size (int, optional): Mails kept per node :math:`k`.
            (default: :obj:`10`)
        num_neighbors (int, optional): Most recent neighbours mails are
            delivered to. (default: :obj:`10`)
        num_heads (int, optional): Attention heads. (default: :obj:`2`)
        dropout (float, optional): Updater output dropout. (default: :obj:`0.0`)
        att_dropout (float, optional): Attention dropout. (default: :obj:`0.0`)
        **kwargs: :obj:`validate`, :obj:`storage` of :class:`TGNMemory`.
    """

    flushes_on_eval = False
    updater_name = "updater"

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int, *,
                 mailbox_size: int = 10, num_neighbors: int = 10, num_heads: int = 2,
                 dropout: float = 0.0, att_dropout: float = 0.0, **kwargs):
        self.mailbox_size = mailbox_size  # (read by _make_state)
        self.num_neighbors = num_neighbors
        message = MailMessage(raw_msg_dim, memory_dim)
        updater = MailboxAttention(memory_dim, message.out_channels, time_dim, num_heads,
                                   dropout, att_dropout)
        super().__init__(num_nodes, raw_msg_dim, memory_dim, time_dim, message,
                         LastAggregator(), updater=updater, **kwargs)
        self.register_load_state_dict_pre_hook(_updater_keys)

    def _make_state(self) -> MailboxState:
        return MailboxState(self.num_nodes, self.memory_dim, self.msg_s_module.out_channels,
                            self.mailbox_size, self.num_neighbors, self.storage)

    def _make_steps(self) -> APANSteps:
        return APANSteps(self.num_nodes)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim}, mailbox_size={self.mailbox_size}, "
                f"num_neighbors={self.num_neighbors})")
