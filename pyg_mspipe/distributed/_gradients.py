r"""Gradient all-reduce and parameter broadcast of a data-parallel run."""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_mspipe.distributed.context import DistributedContext


def unique_parameters(modules: Iterable[torch.nn.Module]) -> list[torch.nn.Parameter]:
    r"""The parameters of :obj:`modules`, each once, in a fixed order (a
    parameter shared by two modules, e.g. the memory's time encoder used by
    the embedding, counts once)."""
    seen, out = set(), []
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def _by_kind(params: list[Tensor]) -> dict:
    groups: dict = {}
    for p in params:
        groups.setdefault((p.dtype, p.device), []).append(p)
    return groups


@torch.no_grad()
def all_reduce_gradients(params: list[torch.nn.Parameter], weight: float,
                         context: DistributedContext,
                         values: list[float] | None = None) -> list[float]:
    r"""Replaces every gradient by :math:`\sum_r w_r g_r` over the ranks
    :math:`r`, :obj:`weight` being this rank's :math:`w_r`, in one all-reduce
    per dtype and device. A parameter no rank's loss reached keeps
    :obj:`grad=None`, as in one process.

    Args:
        params (list): The parameters, in the same order on every rank.
        weight (float): This rank's weight.
        context (DistributedContext): The run.
        values (list, optional): Numbers summed over the ranks in the same
            all-reduce (e.g. the loss); their sums are returned.
            (default: :obj:`None`)
    """
    values = list(values or [])
    sums = values
    kinds = _by_kind(params) or {(torch.float64, torch.device("cpu")): []}
    for (dtype, device), group in kinds.items():
        flat = torch.cat([(p.grad.reshape(-1) * weight) if p.grad is not None
                          else p.new_zeros(p.numel()) for p in group]
                         + [torch.tensor([float(p.grad is not None) for p in group] + values,
                                         dtype=dtype, device=device)])
        context.run("all_reduce of the gradients", dist.all_reduce, flat)
        if values:  # (in the first group's buffer only)
            sums = flat[flat.numel() - len(values):].tolist()
            flat = flat[:flat.numel() - len(values)]
            values = []
        has = flat[flat.numel() - len(group):].tolist()
        offset = 0
        for p, any_grad in zip(group, has):
            numel = p.numel()
            if any_grad > 0:
                grad = flat[offset:offset + numel].view_as(p)
                if p.grad is None:
                    p.grad = grad.clone()
                else:
                    p.grad.copy_(grad)
            offset += numel
    return sums


@torch.no_grad()
def broadcast_parameters(params: list[torch.nn.Parameter], context: DistributedContext,
                         src: int = 0):
    r"""Copies rank :obj:`src`'s parameters to every rank (replicas start
    equal). One broadcast per dtype and device."""
    for group in _by_kind(params).values():
        flat = torch.cat([p.reshape(-1) for p in group])
        context.run("broadcast of the parameters", dist.broadcast, flat, src)
        offset = 0
        for p in group:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
