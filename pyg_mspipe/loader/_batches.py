r"""PyG's temporal mini-batches, one epoch's position in them, and the
checks on the event stream."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import TemporalData


def validate_data(data: TemporalData, name: str = "data"):
    r"""Raises a clear error for anything but a time-sorted
    :class:`~torch_geometric.data.TemporalData` with integer, non-negative
    node ids and finite messages."""
    if not isinstance(data, TemporalData):
        raise TypeError(f"'{name}' must be a TemporalData (got {type(data).__name__})")
    for key in ("src", "dst", "t"):
        value = getattr(data, key, None)
        if not isinstance(value, Tensor) or value.dim() != 1:
            raise ValueError(f"'{name}.{key}' must be a one-dimensional tensor")
        if value.is_floating_point():
            raise TypeError(f"'{name}.{key}' must be an integer tensor (got {value.dtype})")
    num = data.src.numel()
    if data.dst.numel() != num or data.t.numel() != num:
        raise ValueError(f"'{name}.src', '{name}.dst' and '{name}.t' must have the same "
                         "length")
    if num == 0:
        raise ValueError(f"'{name}' holds no events")
    if int(torch.minimum(data.src.min(), data.dst.min())) < 0:
        raise ValueError(f"'{name}' holds negative node ids")
    if num > 1 and bool((data.t[1:] < data.t[:-1]).any()):
        pos = int((data.t[1:] < data.t[:-1]).nonzero()[0, 0]) + 1
        raise ValueError(f"'{name}.t' is not sorted (t[{pos}] < t[{pos - 1}])")
    msg = getattr(data, "msg", None)
    if msg is not None:
        if msg.size(0) != num:
            raise ValueError(f"'{name}.msg' has {msg.size(0)} rows for {num} events")
        if msg.is_floating_point() and not bool(torch.isfinite(msg).all()):
            raise ValueError(f"'{name}.msg' holds NaN or infinite values")


def _check_candidates(candidates: Tensor, data: TemporalData) -> Tensor:
    r"""The candidate negative destinations as a 1-D tensor on
    :obj:`data`'s device with its :obj:`dst` dtype (a clear error for
    anything else)."""
    if not isinstance(candidates, Tensor) or candidates.dim() != 1:
        raise ValueError("'neg_dst_candidates' must be a one-dimensional tensor of node ids")
    if candidates.is_floating_point() or candidates.dtype == torch.bool:
        raise TypeError(f"'neg_dst_candidates' must hold integer node ids "
                        f"(got {candidates.dtype})")
    if candidates.numel() == 0:
        raise ValueError("'neg_dst_candidates' is empty")
    if int(candidates.min()) < 0:
        raise ValueError("'neg_dst_candidates' holds negative node ids")
    return candidates.to(data.dst.device, data.dst.dtype)


class TemporalBatches:
    r"""The batches of :class:`torch_geometric.loader.TemporalDataLoader`:
    successive events, :obj:`neg_dst` drawn uniformly from
    :obj:`[min(dst), max(dst)]` (or from :obj:`neg_dst_candidates`), and
    :obj:`n_id`.

    Args:
        data (TemporalData): The events (sorted by time).
        batch_size (int): Events per batch.
        neg_sampling_ratio (float): Negative destinations per positive one.
        drop_last (bool, optional): Drop the last batch if it is smaller.
            (default: :obj:`False`)
        neg_dst_candidates (torch.Tensor, optional): Node ids the negative
            destinations are drawn from, uniformly with replacement.
            (default: :obj:`None`: every id in :obj:`[min(dst), max(dst)]`)
    """

    def __init__(self, data: TemporalData, batch_size: int, neg_sampling_ratio: float,
                 drop_last: bool = False, neg_dst_candidates: Tensor | None = None):
        self.data = data
        self.batch_size = batch_size
        self.neg_sampling_ratio = neg_sampling_ratio
        self.neg_dst_candidates = None
        if neg_dst_candidates is not None:
            self.neg_dst_candidates = _check_candidates(neg_dst_candidates, data)
        if neg_sampling_ratio > 0:
            self.min_dst = int(data.dst.min())
            self.max_dst = int(data.dst.max())
        if drop_last and len(data) % batch_size != 0:
            self.starts = range(0, len(data) - batch_size, batch_size)
        else:
            self.starts = range(0, len(data), batch_size)

    def __len__(self) -> int:
        return len(self.starts)

    def make(self, index: int, generator: torch.Generator | None = None) -> TemporalData:
        r"""Batch :obj:`index`, its negatives drawn from :obj:`generator`
        (the global RNG for :obj:`None`)."""
        return self.slice(self.starts[index], generator)

    def slice(self, start: int, generator: torch.Generator | None = None) -> TemporalData:
        r"""The batch of events from :obj:`start` on."""
        batch = self.data[start:start + self.batch_size]
        n_ids = [batch.src, batch.dst]
        if self.neg_sampling_ratio > 0:
            size = (round(self.neg_sampling_ratio * batch.dst.size(0)),)
            candidates = self.neg_dst_candidates
            if candidates is None:
                batch.neg_dst = torch.randint(
                    low=self.min_dst, high=self.max_dst + 1, size=size,
                    dtype=batch.dst.dtype, device=batch.dst.device, generator=generator)
            else:
                batch.neg_dst = candidates[torch.randint(
                    candidates.numel(), size, device=candidates.device, generator=generator)]
            n_ids += [batch.neg_dst]
        batch.n_id = torch.cat(n_ids, dim=0).unique()
        return batch

    def insert_events(self, batch: TemporalData) -> tuple[Tensor, Tensor]:
        r"""The events :obj:`(src, dst)` a neighbour loader inserts after
        :obj:`batch` (its own events here; the whole global batch for a
        rank's share, see :class:`~pyg_mspipe.distributed.ShareBatches`)."""
        return batch.src, batch.dst


@dataclass
class EpochPosition:
    r"""Where an epoch stands: what a checkpoint needs to resume it.

    Attributes:
        seed (int): The epoch's draw of the global RNG (seeds its negatives).
        next_batch (int): The next batch to deliver.
        generator (torch.Tensor, optional): State of the negatives generator
            after the batches delivered so far.
        pipeline (dict, optional): The pipeline's :meth:`state_dict`.
        finished (bool): The loop asked for a batch after the last one.
    """
    seed: int
    next_batch: int
    generator: Tensor | None = None
    pipeline: dict | None = None
    finished: bool = False

    def delivered(self, index: int, generator_state: Tensor | None):
        r"""Batch :obj:`index` was handed to the training loop."""
        self.next_batch = index + 1
        self.generator = generator_state

    def to_dict(self) -> dict:
        out = {"seed": self.seed, "next_batch": self.next_batch, "generator": self.generator}
        if self.pipeline is not None:
            out["pipeline"] = self.pipeline
        return out

    @classmethod
    def from_dict(cls, state: dict) -> EpochPosition:
        return cls(state["seed"], state["next_batch"], state.get("generator"),
                   state.get("pipeline"))
