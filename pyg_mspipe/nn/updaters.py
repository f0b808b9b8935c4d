r"""Memory updaters: :obj:`updater(input, h) -> h'` modules, and the fast
GRU kernel of the kept-message path.

Any module with that signature plugs into :class:`~pyg_mspipe.TGNMemory`
(:obj:`updater=`): :class:`torch.nn.GRUCell` (TGN, the default),
:class:`torch.nn.RNNCell` (JODIE, DyRep), or one of your own.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import GRUCell

__all__ = ["gru_update_kept"]


def gru_update_kept(gru: GRUCell, plain: Tensor, t_enc: Tensor, missing: Tensor) -> Tensor:
    r""":obj:`gru(cat([plain, t_enc]), h)` where :obj:`h = plain[:, :d]` is
    the input's first block (:class:`~pyg_mspipe.IdentityMessage`: [memory,
    other's memory, raw message, time encoding]), except in the rows
    :obj:`missing`, whose input is zero (no pending message). Same function,
    less work than ATen's ``gru_cell``:

    * :obj:`h` is multiplied once by the summed weights of the r and z gates
      (:obj:`W_ih[:2d, :d] + W_hh[:2d]`; ATen multiplies it by both and adds);
    * the input projection is split in two, so that the backward pass only
      computes the input gradient of the time-encoding block (the only one
      that needs it);
    * the zero-input rows are recomputed from the hidden projection alone.

    The gate arithmetic is elementwise that of ATen's CPU ``gru_cell``.

    Args:
        gru (torch.nn.GRUCell): The updater (with biases).
        plain (torch.Tensor): [memory, other's memory, raw message], :obj:`[n, k]`.
        t_enc (torch.Tensor): Time encoding, :obj:`[n, time_dim]`.
        missing (torch.Tensor): Rows without a pending message.
    """
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
