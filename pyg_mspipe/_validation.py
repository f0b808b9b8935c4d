r"""Vectorised input checks shared by the public entry points.

Every check raises :class:`ValueError` (bad values) or :class:`TypeError`
(bad dtypes) naming the argument and the problem, *before* any state is
touched. Value checks are batched into a single host read, so on a GPU a
validated call costs one synchronisation.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _is_int_tensor(x: Tensor) -> bool:
    return isinstance(x, Tensor) and not x.is_floating_point() and not x.is_complex() \
        and x.dtype != torch.bool


def check_positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    r"""Checks that :obj:`value` is a (non-negative if :obj:`allow_zero`)
    positive integer and returns it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int (got {type(value).__name__})")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"'{name}' must be {bound} (got {value})")
    return value


def check_index(name: str, index: Tensor, num_nodes: int, *, device=None):
    r"""Checks a 1-D integer tensor of node ids in :obj:`[0, num_nodes)`."""
    if not isinstance(index, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor (got {type(index).__name__})")
    if not _is_int_tensor(index):
        raise TypeError(f"'{name}' must hold integer node ids (got dtype {index.dtype})")
    if index.dim() != 1:
        raise ValueError(f"'{name}' must be one-dimensional (got shape {tuple(index.shape)})")
    if device is not None and index.device != torch.device(device):
        raise ValueError(f"'{name}' is on {index.device} but the module is on {device}")
    if index.numel() == 0:
        return
    lo, hi = torch.aminmax(index)
    lo, hi = torch.stack([lo, hi]).tolist()
    if lo < 0 or hi >= num_nodes:
        raise ValueError(
            f"'{name}' holds node ids outside [0, {num_nodes}) (min {lo}, max {hi})")


def check_order(t_min: Tensor, last_t: Tensor):
    r"""Checks that a batch starting at :obj:`t_min` does not go back
    before :obj:`last_t`, the largest timestamp stored."""
    if bool(t_min < last_t):
        _back_in_time(t_min, last_t)


def _back_in_time(t_min: Tensor, last_t: Tensor):
    raise ValueError(
        f"'t' goes back in time: batch starts at {int(t_min)} but events up to "
        f"t={int(last_t)} were already stored (timestamps must be sorted across "
        f"batches; call reset_state() to start a new stream)")


def check_events(src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, *, num_nodes: int,
                 msg_dim: int, device=None, last_t: Tensor | None = None,
                 allow_empty: bool = False):
    r"""Checks one batch of events ``(src, dst, t, msg)``.

    Args:
        src (torch.Tensor): Source node ids, :obj:`[B]`.
        dst (torch.Tensor): Destination node ids, :obj:`[B]`.
        t (torch.Tensor): Integer timestamps, :obj:`[B]`, non-decreasing.
        msg (torch.Tensor): Floating-point raw messages, :obj:`[B, msg_dim]`.
        num_nodes (int): Node ids must lie in :obj:`[0, num_nodes)`.
        msg_dim (int): Expected :obj:`msg.size(1)`.
        device (torch.device, optional): Device all tensors must be on.
            (default: :obj:`None`)
        last_t (torch.Tensor, optional): Largest timestamp seen before; the
            batch must not go back in time. (default: :obj:`None`)
        allow_empty (bool, optional): Whether :obj:`B = 0` is fine.
            (default: :obj:`False`)
    """
    for name, x in (("src", src), ("dst", dst), ("t", t), ("raw_msg", msg)):
        if not isinstance(x, Tensor):
            raise TypeError(f"'{name}' must be a torch.Tensor (got {type(x).__name__})")
        if device is not None and x.device != torch.device(device):
            raise ValueError(f"'{name}' is on {x.device} but the module is on {device}")
    for name, x in (("src", src), ("dst", dst), ("t", t)):
        if not _is_int_tensor(x):
            raise TypeError(f"'{name}' must be an integer tensor (got dtype {x.dtype})")
        if x.dim() != 1:
            raise ValueError(f"'{name}' must be one-dimensional (got shape {tuple(x.shape)})")
    if not msg.is_floating_point():
        raise TypeError(f"'raw_msg' must be a floating-point tensor (got dtype {msg.dtype})")
    num = src.numel()
    if dst.numel() != num or t.numel() != num:
        raise ValueError(
            f"'src', 'dst' and 't' must have the same length "
            f"(got {src.numel()}, {dst.numel()}, {t.numel()})")
    if msg.dim() != 2 or msg.size(0) != num or msg.size(1) != msg_dim:
        raise ValueError(
            f"'raw_msg' must have shape [{num}, {msg_dim}] (raw_msg_dim={msg_dim}), "
            f"got {tuple(msg.shape)}")
    if num == 0:
        if allow_empty:
            return
        raise ValueError("empty batch: 'src' holds no events")

    ids = torch.cat([src, dst])
    flags = torch.stack([
        ids.min() < 0,
        ids.max() >= num_nodes,
        (t[1:] < t[:-1]).any() if num > 1 else torch.zeros((), dtype=torch.bool,
                                                             device=t.device),
        (t.min() < last_t) if last_t is not None else torch.zeros(
            (), dtype=torch.bool, device=t.device),
        # NaN and inf propagate through a sum; a finite sum means all finite.
        ~torch.isfinite(msg.sum()) if msg.numel() else torch.zeros(
            (), dtype=torch.bool, device=t.device),
    ]).tolist()
    if flags[0] or flags[1]:
        lo, hi = torch.stack([ids.min(), ids.max()]).tolist()
        which = "src" if (src.min() < 0 or src.max() >= num_nodes) else "dst"
        raise ValueError(
            f"'{which}' holds node ids outside [0, {num_nodes}) (min {lo}, max {hi})")
    if flags[2]:
        pos = int((t[1:] < t[:-1]).nonzero()[0, 0]) + 1
        raise ValueError(
            f"'t' is not sorted: t[{pos}]={int(t[pos])} < t[{pos - 1}]={int(t[pos - 1])}")
    if flags[3]:
        _back_in_time(t.min(), last_t)
    if flags[4]:  # the sum may also overflow on huge but finite values
        bad = (~torch.isfinite(msg)).any(dim=1).nonzero()
        if bad.numel():
            raise ValueError(
                f"'raw_msg' holds NaN or infinite values (first in row {int(bad[0, 0])})")
