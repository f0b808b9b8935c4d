r"""TGAT-style temporal attention, as DyGLib's TGN embeds."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Dropout, LayerNorm, Linear

__all__ = ["TemporalAttentionEmbedding"]


class TemporalAttentionEmbedding(torch.nn.Module):
    r"""One layer of TGAT's temporal attention with TGN's merge layer, as
    DyGLib's TGN computes a node's embedding at a time :math:`t` from its
    sampled neighbours :math:`j` (events at :math:`t_j < t`, features
    :math:`\mathbf{e}_j`):

    .. math::
        \mathbf{q} &= [\mathbf{s}_i \| \phi(0)], \quad
        \mathbf{k}_j = \mathbf{v}_j = [\mathbf{s}_j \| \mathbf{e}_j \| \phi(t - t_j)]

        \mathbf{h} &= \mathrm{LayerNorm}(\mathbf{q} + \mathbf{W}_o
        \mathrm{MultiHead}(\mathbf{q}, \mathbf{k}, \mathbf{v}))

        \mathbf{z}_i &= \mathbf{W}_2\,\mathrm{ReLU}(\mathbf{W}_1
        [\mathbf{h} \| \mathbf{s}_i])

    A query without neighbours gets a zero attention term.

    Args:
        in_channels (int): Memory size.
        out_channels (int): Embedding size.
        msg_dim (int): Edge feature size.
        time_enc (torch.nn.Module): The time encoder (shared with the memory).
        heads (int, optional): Attention heads; must divide
            :obj:`in_channels + time_enc.out_channels`. (default: :obj:`2`)
        dropout (float, optional): Dropout of the attention weights and of
            the attention output. (default: :obj:`0.1`)
    """

    def __init__(self, in_channels: int, out_channels: int, msg_dim: int,
                 time_enc: torch.nn.Module, heads: int = 2, dropout: float = 0.1):
        super().__init__()
        self.time_enc = time_enc
        query_dim = in_channels + time_enc.out_channels
        if query_dim % heads != 0:
            raise ValueError(f"'heads' ({heads}) must divide the memory size plus the time "
                             f"encoding size ({query_dim})")
        self.heads = heads
        key_dim = in_channels + msg_dim + time_enc.out_channels
        self.lin_query = Linear(query_dim, query_dim, bias=False)
        self.lin_key = Linear(key_dim, query_dim, bias=False)
        self.lin_value = Linear(key_dim, query_dim, bias=False)
        self.lin_out = Linear(query_dim, query_dim)
        self.norm = LayerNorm(query_dim)
        self.merge1 = Linear(query_dim + in_channels, out_channels)
        self.merge2 = Linear(out_channels, out_channels)
        self.dropout = Dropout(dropout)

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (not the shared
        time encoder's)."""
        for module in (self.lin_query, self.lin_key, self.lin_value, self.lin_out, self.norm,
                       self.merge1, self.merge2):
            module.reset_parameters()

    def forward(self, x: Tensor, query: Tensor, nbr: Tensor, rel_t: Tensor, msg: Tensor,
                mask: Tensor) -> Tensor:
        r"""Embeddings :obj:`[Q, out_channels]` of :obj:`Q` queries.

        Args:
            x (torch.Tensor): Memory of the nodes involved, :obj:`[N, in_channels]`.
            query (torch.Tensor): Row of :obj:`x` of each query's node, :obj:`[Q]`.
            nbr (torch.Tensor): Rows of :obj:`x` of each query's neighbours,
                :obj:`[Q, k]`.
            rel_t (torch.Tensor): Query time minus event time, :obj:`[Q, k]`.
            msg (torch.Tensor): Edge features, :obj:`[Q, k, msg_dim]`.
            mask (torch.Tensor): Which slots hold a neighbour, :obj:`[Q, k]`.
        """
        num_queries, k = mask.shape
        phi0 = self.time_enc(torch.zeros(1, dtype=x.dtype, device=x.device))
        # (index_select: its backward adds the rows with index_add_, the
        # same sums as indexing's index_put_, and faster)
        x_query = x.index_select(0, query)
        q_in = torch.cat([x_query, phi0.expand(num_queries, -1)], dim=-1)
        rel_t_enc = self.time_enc(rel_t.reshape(-1).to(x.dtype)).view(num_queries, k, -1)
        # Each slot's key/value input [memory | features | time], never
        # projected: q.(W_k x_j) = (W_k^T q).x_j and sum_j a_j W_v x_j =
        # W_v sum_j a_j x_j (no biases), so the projections run per query.
        x_nbr = x.index_select(0, nbr.reshape(-1)).view(num_queries, k, -1)
        inputs = torch.cat([x_nbr, msg.to(x.dtype), rel_t_enc], dim=-1)  # [Q, k, key_dim]
        heads, dim = self.heads, q_in.size(-1) // self.heads
        w_key = self.lin_key.weight.view(heads, dim, -1)
        w_value = self.lin_value.weight.view(heads, dim, -1)
        q = self.lin_query(q_in).view(num_queries, heads, dim)
        q_key = torch.einsum("qhd,hdc->qhc", q, w_key)  # [Q, heads, key_dim]
        mixed = _Attend.apply(q_key, inputs, mask, dim ** -0.5, self.dropout.p,
                              self.training)  # [Q, heads, key_dim]
        out = torch.einsum("qhc,hdc->qhd", mixed, w_value).reshape(num_queries, -1)
        h = self.norm(self.dropout(self.lin_out(out)) + q_in)
        return self.merge2(self.merge1(torch.cat([h, x_query], dim=-1)).relu())


class _Attend(torch.autograd.Function):
    # sum_j dropout(softmax_j(scale * q_key . inputs_j)) inputs_j over the
    # unmasked slots (zero for a query without any). The backward forms the
    # gradient of `inputs` in one batched product of inner size 2 * heads,
    # where autograd would take two products of inner size `heads` and add
    # them through a transposed view (docs/benchmarks.md, section 11).
    @staticmethod
    def forward(ctx, q_key: Tensor, inputs: Tensor, mask: Tensor, scale: float, p: float,
                training: bool) -> Tensor:
        num_queries, k = mask.shape
        score = (q_key @ inputs.transpose(1, 2)) * scale  # [Q, heads, k]
        score = score.masked_fill(~mask.view(num_queries, 1, k), float("-inf"))
        alpha = torch.nan_to_num(F.softmax(score, dim=-1), nan=0.0)
        weight = F.dropout(alpha, p, training)
        ctx.save_for_backward(q_key, inputs, alpha, weight)
        ctx.scale = scale
        return weight @ inputs

    @staticmethod
    def backward(ctx, grad_mixed: Tensor):
        q_key, inputs, alpha, weight = ctx.saved_tensors
        grad_weight = grad_mixed @ inputs.transpose(1, 2)  # [Q, heads, k]
        # softmax backward through dropout: alpha * d(weight)/d(alpha) = weight
        g = grad_weight * weight
        grad_score = (g - alpha * g.sum(-1, keepdim=True)) * ctx.scale
        grad_q_key = grad_score @ inputs
        grad_inputs = (torch.cat([grad_score, weight], 1).transpose(1, 2)
                       @ torch.cat([q_key, grad_mixed], 1))
        return grad_q_key, grad_inputs, None, None, None, None
