r"""Memory updaters: any :obj:`updater(input, h) -> h'` module plugs into
:class:`~pyg_mspipe.TGNMemory` (:obj:`updater=`), e.g.
:class:`torch.nn.GRUCell` (TGN, the default) or :class:`torch.nn.RNNCell`
(JODIE, DyRep); :class:`MailboxAttention` is APAN's."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import GRUCell, LayerNorm, Linear

__all__ = ["MailboxAttention"]


def gru_update_kept(gru: GRUCell, plain: Tensor, t_enc: Tensor, missing: Tensor) -> Tensor:
    r""":obj:`gru(cat([plain, t_enc]), h)` with :obj:`h = plain[:, :d]`, the
    input of the rows :obj:`missing` (no pending message) being zero: the
    same function as ATen's ``gru_cell``, with less work (see
    ``docs/benchmarks.md``, section 1)."""
    d = gru.hidden_size
    k = plain.size(-1)
    h = plain[:, :d]
    w_ih, w_hh, b_ih, b_hh = gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh
    weight = w_ih[:, :k].clone()
    weight[:2 * d, :d] += w_hh[:2 * d]
    bias = b_ih.clone()
    bias[:2 * d] += b_hh[:2 * d]
    # (in place: the backward of addmm needs neither output)
    gates = torch.addmm(bias, plain, weight.t()).addmm_(t_enc, w_ih[:, k:].t())
    if missing.numel():
        h_m = h.index_select(0, missing)
        gates_m = torch.cat([torch.addmm(bias[:2 * d], h_m, w_hh[:2 * d].t()),
                             b_ih[2 * d:].expand(missing.numel(), d)], dim=1)
        gates.index_copy_(0, missing, gates_m)
    h_n = torch.addmm(b_hh[2 * d:], h, w_hh[2 * d:].t())
    gates[:, :2 * d].sigmoid_()  # the r and z gates in one pass
    reset_gate, input_gate, i_n = gates.unsafe_chunk(3, 1)
    new_gate = i_n.add(h_n.mul_(reset_gate)).tanh_()
    return (h - new_gate).mul_(input_gate).add_(new_gate)


class MailboxAttention(torch.nn.Module):
    r"""APAN's memory updater (TGL's ``TransformerMemoryUpdater``): the
    memory attends over the node's mails,

    .. math::
        \alpha_{j} = \operatorname{softmax}_j\big(\operatorname{LeakyReLU}_{0.2}
        (\mathbf{W}_q \mathbf{s} \cdot \mathbf{W}_k [\mathbf{m}_j \| \phi(\Delta t_j)])\big),
        \qquad
        \mathbf{s}' = \operatorname{ReLU}\Big(\mathbf{W}_o \operatorname{LN}\big(\mathbf{s} +
        \textstyle\sum_j \alpha_j \mathbf{W}_v [\mathbf{m}_j \| \phi(\Delta t_j)]\big)\Big)

    per head (the heads' outputs concatenated), over the valid slots only.

    Args:
        memory_dim (int): Memory size (divisible by :obj:`num_heads`).
        mail_dim (int): Mail size.
        time_dim (int): Time encoding size.
        num_heads (int, optional): Attention heads. (default: :obj:`2`)
        dropout (float, optional): Dropout on the output. (default: :obj:`0.0`)
        att_dropout (float, optional): Dropout on the attention weights.
            (default: :obj:`0.0`)
    """

    def __init__(self, memory_dim: int, mail_dim: int, time_dim: int, num_heads: int = 2,
                 dropout: float = 0.0, att_dropout: float = 0.0):
        super().__init__()
        if memory_dim % num_heads:
            raise ValueError(f"'memory_dim' ({memory_dim}) must be divisible by 'num_heads' "
                             f"({num_heads})")
        self.num_heads = num_heads
        self.w_q = Linear(memory_dim, memory_dim)
        self.w_k = Linear(mail_dim + time_dim, memory_dim)
        self.w_v = Linear(mail_dim + time_dim, memory_dim)
        self.layer_norm = LayerNorm(memory_dim)
        self.mlp = Linear(memory_dim, memory_dim)
        self.dropout = torch.nn.Dropout(dropout)
        self.att_dropout = torch.nn.Dropout(att_dropout)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module."""
        for module in (self.w_q, self.w_k, self.w_v, self.layer_norm, self.mlp):
            module.reset_parameters()

    def forward(self, memory: Tensor, mail: Tensor, t_enc: Tensor, valid: Tensor) -> Tensor:
        r"""Updated memory :obj:`[n, d]` from the memory :obj:`[n, d]`, the
        mails :obj:`[n, k, mail_dim]`, their time encodings :obj:`[n, k,
        time_dim]` and which slots hold a mail :obj:`[n, k]` (a row without
        any gets the attention output zero)."""
        n, k = mail.shape[:2]
        h = self.num_heads
        q = self.w_q(memory).view(n, 1, h, -1)
        x = torch.cat([mail, t_enc], dim=-1)
        key = self.w_k(x).view(n, k, h, -1)
        value = self.w_v(x).view(n, k, h, -1)
        score = torch.nn.functional.leaky_relu((q * key).sum(-1), 0.2)  # [n, k, h]
        score = score.masked_fill(~valid.unsqueeze(-1), float("-inf"))
        att = torch.softmax(score, dim=1)
        att = torch.where(valid.unsqueeze(-1), att, att.new_zeros(()))  # (no NaN rows)
        att = self.att_dropout(att)
        out = (att.unsqueeze(-1) * value).sum(1).reshape(n, -1)
        out = self.mlp(self.layer_norm(out + memory))
        return torch.relu(self.dropout(out))
