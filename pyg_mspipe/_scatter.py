r"""Scatter helpers with an optional :obj:`torch_scatter` backend: the same
results with and without it (ties in :func:`scatter_argmax` go to the first
maximal entry). Scripted code takes the pure-PyTorch path.
"""
# No `from __future__ import annotations`: TorchScript needs the real
# annotations of the torch.jit.unused stubs.
import torch
from torch import Tensor

try:
    import torch_scatter
except (ImportError, OSError):  # not installed, or built against another torch
    torch_scatter = None


#: Whether :obj:`torch_scatter` is importable. Tests flip this to exercise the
#: fallback path in a process where :obj:`torch_scatter` is installed.
WITH_TORCH_SCATTER: bool = torch_scatter is not None


@torch.jit.unused
def _use_torch_scatter() -> bool:
    # Read at call time (tests flip WITH_TORCH_SCATTER); eager mode only.
    return WITH_TORCH_SCATTER and not torch.compiler.is_compiling()


@torch.jit.unused
def _torch_scatter_argmax(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    return torch_scatter.scatter_max(src, index, dim=0, dim_size=dim_size)[1]


def scatter_argmax(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    r"""Returns, for every group :obj:`j < dim_size`, the position in
    :obj:`src` of the first maximal entry of that group, or :obj:`src.numel()`
    for groups without any entry (the :obj:`torch_scatter.scatter_max`
    convention).

    Args:
        src (torch.Tensor): One-dimensional values.
        index (torch.Tensor): One-dimensional group of each value.
        dim_size (int): Number of groups.
    """
    numel = src.numel()
    if numel == 0:
        return index.new_full((dim_size,), 0)
    # torch.jit.is_scripting() is resolved at scripting time: scripted code
    # keeps only the pure-PyTorch path below.
    if not torch.jit.is_scripting() and _use_torch_scatter():
        return _torch_scatter_argmax(src, index, dim_size)
    src = src.detach()
    group_max = src.new_zeros(dim_size).scatter_reduce_(
        0, index, src, reduce="amax", include_self=False
    )
    pos = torch.arange(numel, device=src.device)
    cand = torch.where(src == group_max[index], pos, numel)
    return pos.new_full((dim_size,), numel).scatter_reduce_(
        0, index, cand, reduce="amin", include_self=True
    )


def scatter_max_long(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    r"""Group-wise maximum with :obj:`0` for empty groups (what
    :meth:`torch_geometric.utils.scatter` with :obj:`reduce="max"` returns)."""
    return src.new_zeros(dim_size).scatter_reduce_(
        0, index, src, reduce="amax", include_self=False
    )
