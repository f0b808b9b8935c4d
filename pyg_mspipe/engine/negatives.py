r"""Negative edges for link-prediction evaluation: DyGLib's random,
historical and inductive strategies, vectorised."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe.loader._batches import validate_data

__all__ = ["NegativeEdges", "NegativeSampler", "STRATEGIES"]

STRATEGIES = ("random", "historical", "inductive")


class NegativeEdges(NamedTuple):
    r"""Negative edges of a batch, sources and destinations :obj:`[B, K]`."""
    src: Tensor
    dst: Tensor


def _first_occurrence(values: Tensor) -> Tensor:
    uniq, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((uniq.numel(),), values.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel()), "amin")
    return first.sort().values


def _draw(total: int, excluded: Tensor, n: int, generator: torch.Generator) -> Tensor:
    r""":obj:`n` uniform positions in :obj:`[0, total)` minus :obj:`excluded`,
    distinct unless fewer are allowed."""
    allowed = total - excluded.numel()
    if n == 0:
        return torch.empty(0, dtype=torch.long)
    if allowed <= 0:
        raise ValueError("no candidate negative edge is left after removing the batch's "
                         "edges")
    if allowed < n or total <= 2 * (n + excluded.numel()):
        # small enough to enumerate
        pool = torch.arange(total)
        pool = pool[~torch.isin(pool, excluded)]
        if pool.numel() < n:
            return pool[torch.randint(pool.numel(), (n,), generator=generator)]
        return pool[torch.randperm(pool.numel(), generator=generator)[:n]]
    # rejection: first occurrences of i.i.d. draws (see docs/evaluation.md)
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < n:
        draws = torch.randint(total, (2 * (n - chosen.numel()) + 16,), generator=generator)
        draws = draws[~torch.isin(draws, excluded)]
        merged = torch.cat([chosen, draws])
        chosen = merged[_first_occurrence(merged)]
    return chosen[:n]


class NegativeSampler:
    r"""DyGLib's ``NegativeEdgeSampler`` (``utils/utils.py``), vectorised:
    :obj:`"random"`, :obj:`"historical"` or :obj:`"inductive"` negative
    edges drawn from the events of :obj:`data` (the strategies:
    ``docs/evaluation.md``), :obj:`B * K` per batch, shuffled into
    :obj:`[B, K]`.

    Args:
        strategy (str): :obj:`"random"`, :obj:`"historical"` or
            :obj:`"inductive"`.
        data (TemporalData): The candidate events, sorted by time.
        last_observed_time (int, optional): The last training time (needed
            by :obj:`"inductive"`). (default: :obj:`None`)
        seed (int, optional): Seed of the generator. (default: :obj:`0`)
    """

    def __init__(self, strategy: str, data: TemporalData,
                 last_observed_time: int | None = None, seed: int = 0):
        if strategy not in STRATEGIES:
            raise ValueError(f"'strategy' must be one of {STRATEGIES} (got {strategy!r})")
        if strategy == "inductive" and last_observed_time is None:
            raise ValueError("the 'inductive' strategy needs 'last_observed_time' (the last "
                             "training time)")
        validate_data(data)
        self.strategy = strategy
        self.seed = seed
        self.last_observed_time = last_observed_time
        src, dst, t = data.src.cpu().long(), data.dst.cpu().long(), data.t.cpu().long()
        self.unique_src = src.unique()
        self.unique_dst = dst.unique()
        self.num_nodes = int(torch.maximum(src.max(), dst.max())) + 1
        self.t = t
        self.codes = src * self.num_nodes + dst
        # Distinct edges in the order of their first occurrence, and that time.
        first = _first_occurrence(self.codes)
        self.edge_codes = self.codes[first]
        self.edge_first_t = t[first]
        self.sorted_codes, self.sorted_pos = self.edge_codes.sort()
        self.generator = torch.Generator()
        self.reset()

    def reset(self):
        r"""Restores the random state to :obj:`seed`."""
        self.generator.manual_seed(self.seed)

    def to_dict(self) -> dict:
        r"""Strategy, seed and last observed time, for a JSON summary."""
        return {"strategy": self.strategy, "seed": self.seed,
                "last_observed_time": self.last_observed_time}

    def sample(self, src: Tensor, dst: Tensor, t: Tensor, num_negatives: int = 1,
               start_time: int | None = None, end_time: int | None = None) -> NegativeEdges:
        r"""Negatives of one batch.

        Args:
            src (torch.Tensor): The batch's sources :obj:`[B]`.
            dst (torch.Tensor): The batch's destinations :obj:`[B]`.
            t (torch.Tensor): The batch's times :obj:`[B]`.
            num_negatives (int, optional): Negatives per positive :obj:`K`.
                (default: :obj:`1`)
            start_time (int, optional): Start of the batch's time window.
                (default: :obj:`t[0]`)
            end_time (int, optional): End of the window. (default: :obj:`t[-1]`)
        """
        if src.dim() != 1 or src.shape != dst.shape or src.shape != t.shape:
            raise ValueError(f"'src', 'dst' and 't' must be 1-D of the same length (got "
                             f"{tuple(src.shape)}, {tuple(dst.shape)}, {tuple(t.shape)})")
        if not isinstance(num_negatives, int) or num_negatives < 1:
            raise ValueError(f"'num_negatives' must be a positive integer (got {num_negatives})")
        size, device = src.numel() * num_negatives, src.device
        if self.strategy == "random":
            pick = torch.randint(self.unique_dst.numel(), (size,), generator=self.generator)
            neg_dst = self.unique_dst[pick].view(-1, num_negatives)
            neg_src = src.cpu().view(-1, 1).expand(-1, num_negatives)
            return NegativeEdges(neg_src.to(device), neg_dst.to(device))
        if src.numel() == 0:
            empty = src.new_empty(0, num_negatives)
            return NegativeEdges(empty, empty)
        start = int(t[0]) if start_time is None else int(start_time)
        end = int(t[-1]) if end_time is None else int(end_time)
        codes = self._candidates(src.cpu().long(), dst.cpu().long(), start, end, size)
        codes = codes[torch.randperm(size, generator=self.generator)]
        neg_src, neg_dst = codes // self.num_nodes, codes % self.num_nodes
        return NegativeEdges(neg_src.view(-1, num_negatives).to(device),
                             neg_dst.view(-1, num_negatives).to(device))

    def _candidates(self, src: Tensor, dst: Tensor, start: int, end: int, size: int) -> Tensor:
        # historical edges: a prefix in first-occurrence order ('inductive':
        # minus the training prefix)
        stop = int(torch.searchsorted(self.edge_first_t, torch.tensor(start), right=True))
        begin = 0
        if self.strategy == "inductive":
            begin = min(stop, int(torch.searchsorted(
                self.edge_first_t, torch.tensor(self.last_observed_time), right=True)))
        lo = int(torch.searchsorted(self.t, torch.tensor(start), right=False))
        hi = int(torch.searchsorted(self.t, torch.tensor(end), right=True))
        window = self.sorted_pos[torch.searchsorted(self.sorted_codes,
                                                    self.codes[lo:hi].unique())]
        excluded = window[(window >= begin) & (window < stop)] - begin
        available = stop - begin - excluded.numel()
        if available >= size:
            return self.edge_codes[begin + _draw(stop - begin, excluded, size, self.generator)]
        pool = torch.arange(begin, stop)
        pool = pool[~torch.isin(pool, excluded + begin)]
        return torch.cat([self._random_edges(src, dst, size - available),
                          self.edge_codes[pool]])

    def _random_edges(self, src: Tensor, dst: Tensor, size: int) -> Tensor:
        # DyGLib's random_sample_with_collision_check
        num_dst = self.unique_dst.numel()
        i = torch.searchsorted(self.unique_src, src).clamp(max=self.unique_src.numel() - 1)
        j = torch.searchsorted(self.unique_dst, dst).clamp(max=num_dst - 1)
        inside = (self.unique_src[i] == src) & (self.unique_dst[j] == dst)
        excluded = (i * num_dst + j)[inside].unique()
        pick = _draw(self.unique_src.numel() * num_dst, excluded, size, self.generator)
        return self.unique_src[pick // num_dst] * self.num_nodes + self.unique_dst[pick % num_dst]
