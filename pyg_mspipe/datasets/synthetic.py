r"""A seeded synthetic event stream with power-law node activity."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch_geometric.data import TemporalData

__all__ = ["synthetic_events"]

#: Events generated per chunk (fixed, so the stream depends on the seed only).
CHUNK = 1 << 20


def _check(name: str, value, low) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"'{name}' must be an integer >= {low} (got {value!r})")


def synthetic_events(num_events: int, num_nodes: int, alpha: float = 1.0,
                     msg_dim: int = 16, seed: int = 0) -> TemporalData:
    r"""Generates :obj:`num_events` events between :obj:`num_nodes` nodes:
    endpoints drawn from a Zipf law over the nodes (a seeded permutation
    decides which node has which rank), no self-loops, timestamps a Poisson
    process of rate 1 floored to integers, :obj:`msg` float32 standard
    normals. The peak memory is about the output's, :obj:`24 + 4 * msg_dim`
    bytes per event (see :doc:`datasets`).

    Args:
        num_events (int): Number of events.
        num_nodes (int): Number of nodes (at least 2).
        alpha (float, optional): Zipf exponent; :obj:`0` is uniform.
            (default: :obj:`1.0`)
        msg_dim (int, optional): Edge feature size. (default: :obj:`16`)
        seed (int, optional): Seed of everything drawn. (default: :obj:`0`)
    """
    _check("num_events", num_events, 1)
    _check("num_nodes", num_nodes, 2)
    _check("msg_dim", msg_dim, 0)
    _check("seed", seed, 0)
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"'alpha' must be a finite number >= 0 (got {alpha!r})")

    node_of_rank = np.random.default_rng([seed, 0]).permutation(num_nodes)
    cdf = np.cumsum(np.arange(1, num_nodes + 1, dtype=np.float64) ** -float(alpha))
    cdf /= cdf[-1]

    src = torch.empty(num_events, dtype=torch.long)
    dst = torch.empty(num_events, dtype=torch.long)
    t = torch.empty(num_events, dtype=torch.long)
    msg = torch.empty(num_events, msg_dim, dtype=torch.float)
    src_np, dst_np, t_np, msg_np = src.numpy(), dst.numpy(), t.numpy(), msg.numpy()
    clock = 0.0
    for chunk, start in enumerate(range(0, num_events, CHUNK)):
        end = min(start + CHUNK, num_events)
        rng = np.random.default_rng([seed, 1, chunk])
        ranks = np.searchsorted(cdf, rng.random((2, end - start)), side="right")
        np.minimum(ranks, num_nodes - 1, out=ranks)  # a draw of exactly 1.0 - ulp
        same = np.flatnonzero(ranks[0] == ranks[1])
        ranks[1, same] = (ranks[1, same] + rng.integers(1, num_nodes, same.size)) % num_nodes
        src_np[start:end] = node_of_rank[ranks[0]]
        dst_np[start:end] = node_of_rank[ranks[1]]
        times = np.cumsum(rng.exponential(1.0, end - start)) + clock
        clock = float(times[-1])
        t_np[start:end] = np.floor(times)
        rng.standard_normal((end - start, msg_dim), dtype=np.float32, out=msg_np[start:end])
    t -= t[0].clone()
    return TemporalData(src=src, dst=dst, t=t, msg=msg)
