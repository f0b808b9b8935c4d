r"""Exact link-prediction metrics (same numbers as scikit-learn's)."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["average_precision", "roc_auc"]


def _check(y_true: Tensor, y_score: Tensor):
    if y_true.shape != y_score.shape or y_true.dim() != 1:
        raise ValueError(f"'y_true' and 'y_score' must be 1-D of the same length "
                         f"(got {tuple(y_true.shape)} and {tuple(y_score.shape)})")


def _curve(y_true: Tensor, y_score: Tensor) -> tuple[Tensor, Tensor]:
    # scikit-learn's _binary_clf_curve
    y_score = y_score.detach().double().cpu().view(-1)
    y_true = y_true.detach().cpu().view(-1).double()
    order = torch.argsort(y_score, descending=True, stable=True)
    y_score, y_true = y_score[order], y_true[order]
    distinct = torch.nonzero(y_score[1:] != y_score[:-1]).view(-1)
    last = torch.cat([distinct, torch.tensor([y_true.numel() - 1])])
    tps = y_true.cumsum(0)[last]
    fps = 1 + last.double() - tps
    return tps, fps


def average_precision(y_true: Tensor, y_score: Tensor) -> float:
    r"""Average precision :math:`\sum_n (R_n - R_{n-1}) P_n` over distinct
    score thresholds, exactly as :func:`sklearn.metrics.average_precision_score`.

    Args:
        y_true (torch.Tensor): Binary labels.
        y_score (torch.Tensor): Scores (higher means more likely positive).
    """
    _check(y_true, y_score)
    tps, fps = _curve(y_true, y_score)
    if tps.numel() == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    recall_prev = torch.cat([recall.new_zeros(1), recall[:-1]])
    return float(((recall - recall_prev) * precision).sum())


def roc_auc(y_true: Tensor, y_score: Tensor) -> float:
    r"""Area under the ROC curve (trapezoidal over distinct thresholds), as
    :func:`sklearn.metrics.roc_auc_score`.

    Args:
        y_true (torch.Tensor): Binary labels.
        y_score (torch.Tensor): Scores (higher means more likely positive).
    """
    _check(y_true, y_score)
    tps, fps = _curve(y_true, y_score)
    if tps.numel() == 0 or tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tpr = torch.cat([tps.new_zeros(1), tps / tps[-1]])
    fpr = torch.cat([fps.new_zeros(1), fps / fps[-1]])
    return float(torch.trapezoid(tpr, fpr))
