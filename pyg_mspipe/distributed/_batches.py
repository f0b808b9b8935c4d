r"""One rank's share of every global batch."""
from __future__ import annotations

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.loader._batches import TemporalBatches


def share_bounds(num_events: int, rank: int, world_size: int) -> tuple[int, int]:
    r"""The events :obj:`[lo, hi)` of a batch of :obj:`num_events` that rank
    :obj:`rank` of :obj:`world_size` takes: contiguous, in rank order, sizes
    differing by at most one (some empty when :obj:`num_events <
    world_size`)."""
    return num_events * rank // world_size, num_events * (rank + 1) // world_size


class ShareBatches(TemporalBatches):
    r"""The global batches of :class:`~pyg_mspipe.loader.TemporalBatches`,
    each cut to this rank's contiguous, time-ordered share
    (:func:`share_bounds`), with the whole global batch's :obj:`global_src`
    and :obj:`global_dst` for the replicated neighbour loader.

    Args:
        data (TemporalData): The events (sorted by time).
        batch_size (int): Events per global batch.
        neg_sampling_ratio (float): Negative destinations per positive one.
        rank (int): This rank.
        world_size (int): Number of ranks.
        drop_last (bool, optional): Drop the last batch if it is smaller.
            (default: :obj:`False`)
        neg_dst_candidates (torch.Tensor, optional): As in
            :class:`~pyg_mspipe.loader.TemporalBatches`. (default: :obj:`None`)
    """

    def __init__(self, data: TemporalData, batch_size: int, neg_sampling_ratio: float,
                 rank: int, world_size: int, drop_last: bool = False,
                 neg_dst_candidates: torch.Tensor | None = None):
        if not 0 <= rank < world_size:
            raise ValueError(f"'rank' must be in [0, {world_size}) (got {rank})")
        super().__init__(data, batch_size, neg_sampling_ratio, drop_last, neg_dst_candidates)
        self.rank = rank
        self.world_size = world_size

    def slice(self, start: int, generator: torch.Generator | None = None) -> TemporalData:
        r"""This rank's share of the global batch of events from :obj:`start`
        on."""
        full = super().slice(start, generator)
        lo, hi = share_bounds(full.num_events, self.rank, self.world_size)
        share = TemporalData(src=full.src[lo:hi], dst=full.dst[lo:hi], t=full.t[lo:hi])
        if getattr(full, "msg", None) is not None:
            share.msg = full.msg[lo:hi]
        n_ids = [share.src, share.dst]
        if self.neg_sampling_ratio > 0:
            num_neg = full.neg_dst.numel()
            neg_lo, neg_hi = _neg_bounds(num_neg, full.num_events, lo, hi)
            share.neg_dst = full.neg_dst[neg_lo:neg_hi]
            n_ids.append(share.neg_dst)
        share.n_id = torch.cat(n_ids).unique()
        share.global_src = full.src
        share.global_dst = full.dst
        return share

    def insert_events(self, batch: TemporalData):
        r"""The whole global batch's events: every replica of the neighbour
        loader inserts them all."""
        return batch.global_src, batch.global_dst


def _neg_bounds(num_neg: int, num_events: int, lo: int, hi: int) -> tuple[int, int]:
    # The negatives of events [lo, hi): with ratio 1 exactly those events'
    # negatives; for another ratio the proportional part, so that the shares
    # still partition the global draw.
    if num_events == 0:
        return 0, 0
    return num_neg * lo // num_events, num_neg * hi // num_events
