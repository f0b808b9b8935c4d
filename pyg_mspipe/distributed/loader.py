r"""A :class:`~pyg_mspipe.TemporalDataLoader` that delivers one rank's
shares."""
from __future__ import annotations

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.distributed._batches import ShareBatches
from pyg_mspipe.loader import TemporalDataLoader

__all__ = ["ShareLoader"]


class ShareLoader(TemporalDataLoader):
    r"""A :class:`~pyg_mspipe.TemporalDataLoader` (same arguments, same
    prefetching and pipelining) whose batches are this rank's shares of the
    global batches of :obj:`batch_size` events
    (:class:`~pyg_mspipe.distributed.ShareBatches`). The negatives come from
    :obj:`generator`, which must start in the same state on every rank (the
    global batch's negatives are drawn, then sliced).

    Args:
        data (TemporalData): The events (sorted by time), the same on every
            rank.
        batch_size (int): Events per *global* batch.
        neg_sampling_ratio (float): Negative destinations per positive one.
        rank (int): This rank.
        world_size (int): Number of ranks.
        generator (torch.Generator): Negatives generator, seeded alike on
            every rank.
        **kwargs (optional): The other arguments of
            :class:`~pyg_mspipe.TemporalDataLoader`.
    """

    def __init__(self, data: TemporalData, batch_size: int, neg_sampling_ratio: float = 0.0,
                 *, rank: int, world_size: int, generator: torch.Generator, **kwargs):
        if not isinstance(generator, torch.Generator):
            raise TypeError("'generator' must be a torch.Generator seeded alike on every "
                            "rank (the negatives of the global batch)")
        super().__init__(data, batch_size, neg_sampling_ratio, generator=generator, **kwargs)
        self.batches = ShareBatches(data, batch_size, neg_sampling_ratio, rank, world_size,
                                    kwargs.get("drop_last", False),
                                    kwargs.get("neg_dst_candidates"))
        self.rank = rank
        self.world_size = world_size

    def state_dict(self) -> dict:
        r"""The position in the current epoch, without the pipeline's
        fetches (they are this rank's, and are read again on resuming): the
        same on every rank, so any world size resumes it."""
        state = super().state_dict()
        if state["position"] is not None:
            state["position"].pop("pipeline", None)
        return state
