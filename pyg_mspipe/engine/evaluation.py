r"""Link-prediction evaluation (see ``docs/evaluation.md``)."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pyg_mspipe.engine.metrics import average_precision, roc_auc
from pyg_mspipe.engine.negatives import STRATEGIES, NegativeSampler
from pyg_mspipe.engine.ranking import ranks
from pyg_mspipe.engine.splits import LinkSplit

__all__ = ["EvalProtocol", "evaluate_link_prediction"]

SPLITS = ("transductive", "inductive")
NEGATIVES = ("pyg",) + STRATEGIES
_HITS = re.compile(r"hits@([1-9][0-9]*)")


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    if isinstance(metrics, str) or len(metrics) == 0:
        raise ValueError(f"'metrics' must be a non-empty sequence of names (got {metrics!r})")
    for name in metrics:
        if name not in ("ap", "auc", "mrr") and not _HITS.fullmatch(str(name)):
            raise ValueError(f"unknown metric {name!r} (use 'ap', 'auc', 'mrr' or 'hits@k')")
    return tuple(metrics)


@dataclass
class EvalProtocol:
    r"""An evaluation protocol, as recorded in a run's summary.

    Args:
        split (str, optional): :obj:`"transductive"` or :obj:`"inductive"`.
            (default: :obj:`"transductive"`)
        negatives (str, optional): :obj:`"pyg"` (the loader's
            :obj:`neg_dst`, PyG's example) or a strategy of
            :class:`NegativeSampler`: :obj:`"random"`, :obj:`"historical"`,
            :obj:`"inductive"`. (default: :obj:`"pyg"`)
        num_negatives (int, optional): Negatives per positive (:obj:`1` for
            :obj:`"pyg"`). (default: :obj:`1`)
        metrics (Sequence[str], optional): Among :obj:`"ap"`, :obj:`"auc"`,
            :obj:`"mrr"`, :obj:`"hits@k"`. (default: :obj:`("ap", "auc")`)
        seed (int, optional): Seed of the samplers. (default: :obj:`0`)
    """
    split: str = "transductive"
    negatives: str = "pyg"
    num_negatives: int = 1
    metrics: Sequence[str] = field(default=("ap", "auc"))
    seed: int = 0

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"'split' must be one of {SPLITS} (got {self.split!r})")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"'negatives' must be one of {NEGATIVES} (got {self.negatives!r})")
        if not isinstance(self.num_negatives, int) or self.num_negatives < 1:
            raise ValueError(f"'num_negatives' must be a positive integer "
                             f"(got {self.num_negatives!r})")
        if self.negatives == "pyg" and self.num_negatives != 1:
            raise ValueError("'num_negatives' > 1 needs a sampler strategy, not 'pyg' (the "
                             "loader draws one negative per positive)")
        self.metrics = _check_metrics(self.metrics)

    def to_dict(self) -> dict:
        r"""The protocol as a JSON-ready dictionary."""
        return {"split": self.split, "negatives": self.negatives,
                "num_negatives": self.num_negatives, "metrics": list(self.metrics),
                "seed": self.seed}

    def sampler(self, split: LinkSplit, part: str, new: bool = False) -> NegativeSampler | None:
        r"""DyGLib's negative sampler for :obj:`part` (:obj:`"val"` or
        :obj:`"test"`) of :obj:`split`, on the new-node subset if
        :obj:`new`; :obj:`None` for :obj:`"pyg"`."""
        if part not in ("val", "test"):
            raise ValueError(f"'part' must be 'val' or 'test' (got {part!r})")
        if self.negatives == "pyg":
            return None
        before = split.train if part == "val" else split.val
        last = int(before.t[-1]) if before.num_events > 0 else None
        if part == "test" and last is None and split.train.num_events > 0:
            last = int(split.train.t[-1])
        data = (split.val_new if part == "val" else split.test_new) if new else split.full
        seed = self.seed + (0 if part == "val" else 2) + int(new)
        return NegativeSampler(self.negatives, data, last_observed_time=last, seed=seed)


class _Scores:
    r"""Accumulates scores: AP / AUC per group of events, ranks over all."""

    def __init__(self, metrics: tuple[str, ...], group_size: int | None):
        self.metrics = metrics
        self.group_size = group_size
        self.pos: list[Tensor] = []
        self.neg: list[Tensor] = []
        self.pending = 0
        self.aps: list[float] = []
        self.aucs: list[float] = []
        self.reciprocal = 0.0
        self.hits = {name: 0 for name in metrics if _HITS.fullmatch(name)}
        self.count = 0

    def add(self, pos: Tensor, neg: Tensor):
        pos, neg = pos.detach().cpu(), neg.detach().cpu()
        if "mrr" in self.metrics or self.hits:
            rank = ranks(pos, neg)
            self.reciprocal += float((1.0 / rank).sum())
            for name in self.hits:
                self.hits[name] += int((rank <= int(name[5:])).sum())
        self.count += pos.numel()
        if "ap" in self.metrics or "auc" in self.metrics:
            self.pos.append(pos)
            self.neg.append(neg)
            self.pending += pos.numel()
            while self.pending >= self.group_size:
                self._flush(self.group_size)

    def _flush(self, size: int):
        pos, neg = torch.cat(self.pos), torch.cat(self.neg)
        self.pos, self.neg = [pos[size:]], [neg[size:]]
        self.pending -= size
        pos, neg = pos[:size], neg[:size]
        y_pred = torch.cat([pos, neg.reshape(-1)]).sigmoid()
        y_true = torch.cat([torch.ones(pos.numel()), torch.zeros(neg.numel())])
        if "ap" in self.metrics:
            self.aps.append(average_precision(y_true, y_pred))
        if "auc" in self.metrics:
            self.aucs.append(roc_auc(y_true, y_pred))

    def result(self) -> dict:
        if self.pending > 0:
            self._flush(self.pending)
        out = {}
        for name in self.metrics:
            if name == "ap":
                out[name] = float(torch.tensor(self.aps).mean()) if self.aps else math.nan
            elif name == "auc":
                out[name] = float(torch.tensor(self.aucs).mean()) if self.aucs else math.nan
            elif name == "mrr":
                out[name] = self.reciprocal / self.count if self.count else math.nan
            else:
                out[name] = self.hits[name] / self.count if self.count else math.nan
        return out


@torch.no_grad()
def evaluate_link_prediction(model, loader, neighbor_loader, data, *,
                             sampler: NegativeSampler | None = None, num_negatives: int = 1,
                             metrics: Sequence[str] = ("ap", "auc"),
                             device: torch.device | str = "cpu", seed: int | None = 12345,
                             new_nodes: Tensor | None = None,
                             group_size: int | None = None, scores=None) -> dict:
    r"""The evaluation loop of PyG's ``examples/tgn.py``
    (:func:`~pyg_mspipe.engine.training.evaluate`) with the negatives of
    :obj:`sampler`, all of a batch scored in one pass. AP and ROC-AUC are
    averaged over groups of :obj:`group_size` evaluated events, MRR and
    Hits@k over all of them.

    Args:
        model (TGNModel): The model.
        loader (Iterable): Evaluation batches.
        neighbor_loader: A :class:`LastNeighborLoader` (PyG's or ours), or
            :obj:`None` for a model without neighbourhood (JODIE, APAN).
        data (TemporalData): The event stream the neighbour loader's edge ids
            index.
        sampler (NegativeSampler, optional): The negatives; :obj:`None` uses
            the loader's :obj:`batch.neg_dst`. (default: :obj:`None`)
        num_negatives (int, optional): Negatives per positive drawn from
            :obj:`sampler`. (default: :obj:`1`)
        metrics (Sequence[str], optional): Among :obj:`"ap"`, :obj:`"auc"`,
            :obj:`"mrr"`, :obj:`"hits@k"`. (default: :obj:`("ap", "auc")`)
        device (torch.device, optional): Compute device. (default: :obj:`"cpu"`)
        seed (int, optional): :func:`torch.manual_seed` before iterating.
            (default: :obj:`12345`)
        new_nodes (torch.Tensor, optional): If given, only the events with a
            node among these are evaluated (all are still stored).
            (default: :obj:`None`)
        group_size (int, optional): Events per AP / AUC group.
            (default: the first batch's number of events)
        scores (optional): In place of :obj:`metrics`, an object with
            :meth:`add(pos [B], neg [B, K])` and :meth:`result` (e.g.
            :class:`~pyg_mspipe.engine.tgb.TGBScores`); a negative
            :obj:`-1` (padding) scores :obj:`NaN`. (default: :obj:`None`)
    """
    metrics = _check_metrics(metrics)
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"'num_negatives' must be a positive integer (got {num_negatives!r})")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"'group_size' must be a positive integer (got {group_size!r})")
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    memory.eval()
    gnn.eval()
    link_pred.eval()
    if seed is not None:
        torch.manual_seed(seed)
    if sampler is not None:
        sampler.reset()
    num_nodes = data.num_nodes
    is_new = None
    if new_nodes is not None:
        new_nodes = new_nodes.to(device)
        size = max(num_nodes, int(new_nodes.max()) + 1 if new_nodes.numel() else 0)
        is_new = torch.zeros(size, dtype=torch.bool, device=device)
        is_new[new_nodes] = True
    assoc = torch.empty(num_nodes, dtype=torch.long, device=device)
    own = scores is None
    if own:
        scores = _Scores(metrics, group_size)
    for batch in loader:
        batch = batch.to(device)
        if own and scores.group_size is None:
            scores.group_size = batch.num_events
        src, dst, t, keep = batch.src, batch.dst, batch.t, None
        if is_new is not None:
            keep = is_new[src] | is_new[dst]
            src, dst, t = src[keep], dst[keep], t[keep]
        h = pad = None
        if src.numel() > 0:
            if sampler is None:
                neg_src, neg_dst = _loader_negatives(batch, src, keep)
            else:
                neg_src, neg_dst = sampler.sample(src, dst, t, num_negatives)
            if neg_dst.numel() > 0 and bool((neg_dst < 0).any()):  # padded rows
                pad = neg_dst < 0
                neg_dst = torch.where(pad, dst.view(-1, 1), neg_dst)
            n_id = torch.cat([src, dst, neg_src.reshape(-1), neg_dst.reshape(-1)]).unique()
            edge_index = t_e = msg_e = None
            if neighbor_loader is not None:
                n_id, edge_index, e_id = neighbor_loader(n_id)
                t_e, msg_e = data.t[e_id].to(device), data.msg[e_id].to(device)
            assoc[n_id] = torch.arange(n_id.size(0), device=device)
            z, last_update = memory(n_id)
            h = model.embed(z, last_update, edge_index, t_e, msg_e)
            # Positives and negatives in one call: equal pairs, equal scores.
            t_neg = t.view(-1, 1).expand(-1, neg_dst.size(-1)).reshape(-1)
            out = model.score(h, last_update, assoc, torch.cat([src, neg_src.reshape(-1)]),
                              torch.cat([dst, neg_dst.reshape(-1)]),
                              torch.cat([t, t_neg])).view(-1)
            neg_out = out[src.numel():].view(src.numel(), -1)
            if pad is not None:
                neg_out = neg_out.masked_fill(pad, float("nan"))
            scores.add(out[:src.numel()], neg_out)
        model.update_memory(h, assoc, batch.src, batch.dst, batch.t, batch.msg)
        if neighbor_loader is not None:
            neighbor_loader.insert(batch.src, batch.dst)
    return scores.result()


def _loader_negatives(batch, src: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor]:
    # the loader's neg_dst as [B, K]
    neg_dst = getattr(batch, "neg_dst", None)
    num = batch.num_events
    if neg_dst is None or neg_dst.numel() == 0 or neg_dst.numel() % num != 0:
        raise ValueError("with 'sampler=None' the loader must draw a whole number of "
                         "negatives per event ('neg_sampling_ratio' a positive integer)")
    neg_dst = neg_dst.view(num, -1)
    if keep is not None:
        neg_dst = neg_dst[keep]
    return src.view(-1, 1).expand_as(neg_dst), neg_dst
