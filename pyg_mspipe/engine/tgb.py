r"""TGB's evaluation protocol: its negatives and its own ``Evaluator``."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe.datasets.tgb import TEST_RATIO, VAL_RATIO, TGBLinkData
from pyg_mspipe.engine.negatives import NegativeEdges
from pyg_mspipe.engine.splits import LinkSplit, _split
from pyg_mspipe.loader._batches import validate_data

__all__ = ["TGBNegatives", "TGBScores", "TGBProtocol", "tgb_split"]

_HITS = re.compile(r"hits@([1-9][0-9]*)")


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    if isinstance(metrics, str) or len(metrics) == 0:
        raise ValueError(f"'metrics' must be a non-empty sequence of names (got {metrics!r})")
    for name in metrics:
        if name != "mrr" and not _HITS.fullmatch(str(name)):
            raise ValueError(f"TGB's evaluation gives 'mrr' and 'hits@k', not {name!r}")
    return tuple(metrics)


class TGBNegatives:
    r"""TGB's negatives of one evaluation part, batch by batch in event
    order (an evaluation :obj:`sampler`); :obj:`-1` pads short rows.

    Args:
        events (TemporalData): The part's events, in order.
        negatives (torch.Tensor): Their negatives, :obj:`[E, K]`
            (:meth:`TGBLinkData.negatives`).
    """

    def __init__(self, events: TemporalData, negatives: Tensor):
        if negatives.dim() != 2 or negatives.size(0) != events.num_events:
            raise ValueError(f"'negatives' must be [{events.num_events}, K] (got "
                             f"{tuple(negatives.shape)})")
        self.events = events
        self.negatives = negatives
        self.position = 0

    def reset(self):
        r"""Starts again from the first event."""
        self.position = 0

    def sample(self, src: Tensor, dst: Tensor, t: Tensor,
               num_negatives: int | None = None) -> NegativeEdges:
        r"""The negatives of the next events, which must be these
        (:obj:`num_negatives` is ignored)."""
        start, end = self.position, self.position + src.numel()
        ev = self.events
        if end > ev.num_events or not (
                torch.equal(ev.src[start:end].to(src.device), src)
                and torch.equal(ev.dst[start:end].to(src.device), dst)
                and torch.equal(ev.t[start:end].to(src.device), t)):
            raise ValueError(f"TGB's negatives are for the part's events in order: events "
                             f"{start}..{end - 1} are not the ones given")
        self.position = end
        neg_dst = self.negatives[start:end].to(src.device, non_blocking=True)
        return NegativeEdges(src.view(-1, 1).expand_as(neg_dst), neg_dst)


class TGBScores:
    r"""Collects each batch's scores (:obj:`NaN` for padding) and hands all
    of them to TGB's ``Evaluator`` at once: MRR and Hits@k as TGB reports
    them.

    Args:
        name (str): The TGB dataset (the :obj:`Evaluator` checks it).
        metrics (Sequence[str], optional): :obj:`"mrr"` and :obj:`"hits@k"`.
            (default: :obj:`("mrr", "hits@10")`)
    """

    def __init__(self, name: str, metrics: Sequence[str] = ("mrr", "hits@10")):
        from tgb.linkproppred.evaluate import Evaluator

        self.metrics = _check_metrics(metrics)
        ks = [int(m[5:]) for m in self.metrics if m != "mrr"]
        self.evaluators = [Evaluator(name, k_value=k) for k in ks] or [Evaluator(name)]
        self.pos: list[np.ndarray] = []
        self.neg: list[np.ndarray] = []

    def add(self, pos: Tensor, neg: Tensor):
        r"""Adds a batch's scores."""
        self.pos.append(pos.detach().float().cpu().numpy())
        self.neg.append(neg.detach().float().cpu().numpy())

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        r"""All scores so far, negatives :obj:`NaN`-padded."""
        width = max((n.shape[1] for n in self.neg), default=0)
        neg = np.full((sum(n.shape[0] for n in self.neg), width), np.nan, dtype=np.float32)
        row = 0
        for n in self.neg:
            neg[row:row + n.shape[0], :n.shape[1]] = n
            row += n.shape[0]
        return np.concatenate(self.pos) if self.pos else np.empty(0, np.float32), neg

    def result(self) -> dict:
        r"""The metrics, from one :obj:`Evaluator` call per :obj:`k`."""
        pos, neg = self.scores()
        if pos.size == 0:
            return {name: float("nan") for name in self.metrics}
        out = {}
        for evaluator in self.evaluators:
            got = evaluator.eval({"y_pred_pos": pos, "y_pred_neg": neg,
                                  "eval_metric": ["mrr", "hits@"]})
            out.update({name: float(value) for name, value in got.items()})
        return {name: out[name] for name in self.metrics}


@dataclass
class TGBProtocol:
    r"""TGB's evaluation of a :class:`TGBLinkData`, in place of an
    :class:`~pyg_mspipe.engine.evaluation.EvalProtocol`.

    Args:
        dataset (TGBLinkData): The dataset.
        metrics (Sequence[str], optional): :obj:`"mrr"` and :obj:`"hits@k"`.
            (default: :obj:`("mrr", "hits@10")`)
    """
    dataset: TGBLinkData
    metrics: Sequence[str] = field(default=("mrr", "hits@10"))
    split: str = field(default="transductive", init=False)
    negatives: str = field(default="tgb", init=False)

    def __post_init__(self):
        self.metrics = _check_metrics(self.metrics)

    @property
    def num_negatives(self) -> int:
        r"""The most negatives of a positive."""
        return max(self.dataset.val_negatives.size(1), self.dataset.test_negatives.size(1))

    def to_dict(self) -> dict:
        r"""The protocol as a JSON-ready dictionary."""
        return {"split": "tgb", "negatives": "tgb", "dataset": self.dataset.name,
                "num_negatives": self.num_negatives, "metrics": list(self.metrics)}

    def sampler(self, split: LinkSplit, part: str, new: bool = False) -> TGBNegatives:
        r"""TGB's negatives of :obj:`part` (:obj:`"val"` or :obj:`"test"`)."""
        if new:
            raise ValueError("TGB's protocol has no new-node subset")
        events = split.val if part == "val" else split.test
        return TGBNegatives(events, self.dataset.negatives(part))

    def scores(self) -> TGBScores:
        r"""A fresh accumulator of TGB's metrics."""
        return TGBScores(self.dataset.name, self.metrics)



def tgb_split(dataset: TGBLinkData) -> LinkSplit:
    r"""TGB's split of :obj:`dataset` (its own boundaries) as a
    :class:`LinkSplit`."""
    data = dataset.data
    validate_data(data)
    val_idx = dataset.num_train
    keep = torch.zeros(data.num_events, dtype=torch.bool, device=data.src.device)
    keep[:val_idx] = True
    return _split(data, keep, val_idx, val_idx + dataset.num_val, data.src.new_empty(0),
                  "transductive", VAL_RATIO, TEST_RATIO, 0.0, None)
