r"""TGB's ranking metrics for one-vs-many link prediction, batched."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

__all__ = ["ranks", "mrr_hits"]


def ranks(pos_score: Tensor, neg_score: Tensor) -> Tensor:
    r"""Rank of each positive among its negatives, ties counted half (TGB's
    ``Evaluator._eval_hits_and_mrr``).

    Args:
        pos_score (torch.Tensor): Positive scores :obj:`[B]`.
        neg_score (torch.Tensor): Negative scores :obj:`[B, K]`.
    """
    if pos_score.dim() != 1 or neg_score.dim() != 2 or neg_score.size(0) != pos_score.size(0):
        raise ValueError(f"'pos_score' must be [B] and 'neg_score' [B, K] (got "
                         f"{tuple(pos_score.shape)} and {tuple(neg_score.shape)})")
    pos = pos_score.view(-1, 1)
    optimistic = (neg_score > pos).sum(dim=1)
    pessimistic = (neg_score >= pos).sum(dim=1)
    return 0.5 * (optimistic + pessimistic).double() + 1


def mrr_hits(pos_score: Tensor, neg_score: Tensor, ks: Sequence[int] = (1, 3, 10)) -> dict:
    r"""Mean reciprocal rank and Hits@k over all positives (TGB's).

    Args:
        pos_score (torch.Tensor): Positive scores :obj:`[B]`.
        neg_score (torch.Tensor): Negative scores :obj:`[B, K]`.
        ks (Sequence[int], optional): The :obj:`k` of each Hits@k.
            (default: :obj:`(1, 3, 10)`)
    """
    rank = ranks(pos_score, neg_score)
    if rank.numel() == 0:
        raise ValueError("'pos_score' holds no positive")
    out = {"mrr": float((1.0 / rank).mean())}
    for k in ks:
        out[f"hits@{k}"] = float((rank <= k).double().mean())
    return out
