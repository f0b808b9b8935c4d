r"""Chronological train/validation/test splits of an event stream for link
prediction: transductive (PyG's) and inductive (the TGN paper's)."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe.loader._batches import validate_data

__all__ = ["LinkSplit", "transductive_split", "inductive_split", "NEW_NODE_DRAWS",
           "DYGLIB_DRAW_SEED"]

#: How :func:`inductive_split` draws the new nodes.
NEW_NODE_DRAWS = ("torch", "dyglib")

#: The seed of DyGLib's draw (``random.seed(2020)`` in its
#: ``get_link_prediction_data``).
DYGLIB_DRAW_SEED = 2020


@dataclass
class LinkSplit:
    r"""A chronological split of an event stream.

    Attributes:
        train (TemporalData): Training events.
        val (TemporalData): All validation events.
        test (TemporalData): All test events.
        new_nodes (torch.Tensor): Sorted ids of the nodes no training event
            touches.
        val_new (TemporalData): Validation events with a new node.
        test_new (TemporalData): Test events with a new node.
        stream (TemporalData): :obj:`train`, :obj:`val`, :obj:`test` in
            order: the loops' :obj:`data`.
        full (TemporalData): Every event of the stream that was split.
        protocol (str): :obj:`"transductive"` or :obj:`"inductive"`.
        masked_nodes (torch.Tensor): The nodes drawn and kept out of
            training.
        val_ratio (float): Share of events after the validation time.
        test_ratio (float): Share of events after the test time.
        new_node_ratio (float): Drawn nodes per node of the stream.
        seed (int, optional): Seed of the draw.
    """
    train: TemporalData
    val: TemporalData
    test: TemporalData
    new_nodes: Tensor
    val_new: TemporalData
    test_new: TemporalData
    stream: TemporalData
    full: TemporalData
    protocol: str
    masked_nodes: Tensor
    val_ratio: float
    test_ratio: float
    new_node_ratio: float = 0.0
    seed: int | None = None

    def to_dict(self) -> dict:
        r"""Sizes, ratios and seed, for a JSON summary."""
        return {
            "protocol": self.protocol,
            "val_ratio": self.val_ratio,
            "test_ratio": self.test_ratio,
            "new_node_ratio": self.new_node_ratio,
            "seed": self.seed,
            "num_train": self.train.num_events,
            "num_val": self.val.num_events,
            "num_test": self.test.num_events,
            "num_val_new": self.val_new.num_events,
            "num_test_new": self.test_new.num_events,
            "num_new_nodes": self.new_nodes.numel(),
            "num_masked_nodes": self.masked_nodes.numel(),
        }


def _check_ratios(val_ratio: float, test_ratio: float):
    for name, value in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
        if not 0 <= value < 1:
            raise ValueError(f"'{name}' must be in [0, 1) (got {value})")
    if val_ratio + test_ratio >= 1:
        raise ValueError(f"'val_ratio' + 'test_ratio' must be below 1 "
                         f"(got {val_ratio} + {test_ratio})")


def _boundaries(data: TemporalData, val_ratio: float, test_ratio: float) -> tuple[int, int]:
    # PyG's TemporalData.train_val_test_split
    val_time, test_time = np.quantile(data.t.cpu().numpy(),
                                      [1. - val_ratio - test_ratio, 1. - test_ratio])
    return int((data.t <= val_time).sum()), int((data.t <= test_time).sum())


def _node_mask(num_nodes: int, nodes: Tensor, device) -> Tensor:
    mask = torch.zeros(num_nodes, dtype=torch.bool, device=device)
    mask[nodes] = True
    return mask


def _split(data: TemporalData, train_keep: Tensor, val_idx: int, test_idx: int,
           masked: Tensor, protocol: str, val_ratio: float, test_ratio: float,
           new_node_ratio: float, seed: int | None) -> LinkSplit:
    num_nodes = data.num_nodes
    if bool(train_keep[:val_idx].all()):
        # nothing removed: views
        stream, train = data, data[:val_idx]
    else:
        keep = train_keep.clone()
        keep[val_idx:] = True
        stream, train = data[keep], data[:val_idx][train_keep[:val_idx]]
    seen = _node_mask(num_nodes, torch.cat([train.src, train.dst]), data.src.device)
    present = _node_mask(num_nodes, torch.cat([data.src, data.dst]), data.src.device)
    new_mask = present & ~seen
    val, test = data[val_idx:test_idx], data[test_idx:]
    return LinkSplit(
        train=train, val=val, test=test,
        new_nodes=new_mask.nonzero().view(-1),
        val_new=val[new_mask[val.src] | new_mask[val.dst]],
        test_new=test[new_mask[test.src] | new_mask[test.dst]],
        stream=stream, full=data, protocol=protocol, masked_nodes=masked,
        val_ratio=val_ratio, test_ratio=test_ratio, new_node_ratio=new_node_ratio, seed=seed)


def transductive_split(data: TemporalData, val_ratio: float = 0.15,
                       test_ratio: float = 0.15) -> LinkSplit:
    r"""The split of
    :meth:`torch_geometric.data.TemporalData.train_val_test_split` as a
    :class:`LinkSplit`.

    Args:
        data (TemporalData): The events, sorted by time.
        val_ratio (float, optional): Share of validation events.
            (default: :obj:`0.15`)
        test_ratio (float, optional): Share of test events.
            (default: :obj:`0.15`)
    """
    validate_data(data)
    _check_ratios(val_ratio, test_ratio)
    val_idx, test_idx = _boundaries(data, val_ratio, test_ratio)
    keep = torch.zeros(data.num_events, dtype=torch.bool, device=data.src.device)
    keep[:val_idx] = True
    return _split(data, keep, val_idx, test_idx, data.src.new_empty(0), "transductive",
                  val_ratio, test_ratio, 0.0, None)


def inductive_split(data: TemporalData, val_ratio: float = 0.15, test_ratio: float = 0.15,
                    new_node_ratio: float = 0.1, seed: int = 0,
                    draw: str = "torch") -> LinkSplit:
    r"""The inductive split of the TGN paper (as the TGN authors and DyGLib
    define it; see ``docs/evaluation.md``): the boundaries of
    :func:`transductive_split`, and the events of
    :obj:`int(new_node_ratio * M)` nodes of the validation and test events,
    drawn uniformly, removed from training.

    Args:
        data (TemporalData): The events, sorted by time.
        val_ratio (float, optional): Share of validation events.
            (default: :obj:`0.15`)
        test_ratio (float, optional): Share of test events.
            (default: :obj:`0.15`)
        new_node_ratio (float, optional): Nodes kept out of training, per
            distinct node of the stream. (default: :obj:`0.1`)
        seed (int, optional): Seed of the draw. (default: :obj:`0`)
        draw (str, optional): :obj:`"torch"` (:func:`torch.randperm`) or
            :obj:`"dyglib"` (DyGLib's :func:`random.sample`; with
            :obj:`seed=DYGLIB_DRAW_SEED` DyGLib's nodes).
            (default: :obj:`"torch"`)
    """
    validate_data(data)
    _check_ratios(val_ratio, test_ratio)
    if draw not in NEW_NODE_DRAWS:
        raise ValueError(f"unknown draw {draw!r}; expected one of {list(NEW_NODE_DRAWS)}")
    if not 0 <= new_node_ratio < 1:
        raise ValueError(f"'new_node_ratio' must be in [0, 1) (got {new_node_ratio})")
    val_idx, test_idx = _boundaries(data, val_ratio, test_ratio)
    device = data.src.device
    num_distinct = int(_node_mask(data.num_nodes, torch.cat([data.src, data.dst]),
                                  device).sum())
    candidates = torch.cat([data.src[val_idx:], data.dst[val_idx:]]).unique()
    num_masked = int(new_node_ratio * num_distinct)
    if num_masked > candidates.numel():
        raise ValueError(f"'new_node_ratio'={new_node_ratio} asks for {num_masked} new nodes "
                         f"but the validation and test events hold only "
                         f"{candidates.numel()} distinct nodes")
    if draw == "dyglib":
        # DyGLib's random.sample over a set of small ints: increasing order
        pick = torch.tensor(random.Random(seed).sample(range(candidates.numel()), num_masked),
                            dtype=torch.long)
    else:
        generator = torch.Generator().manual_seed(seed)
        pick = torch.randperm(candidates.numel(), generator=generator)[:num_masked]
    masked = candidates[pick.to(device)].sort().values
    is_masked = _node_mask(data.num_nodes, masked, device)
    train_keep = ~(is_masked[data.src] | is_masked[data.dst])
    train_keep[val_idx:] = False
    return _split(data, train_keep, val_idx, test_idx, masked, "inductive",
                  val_ratio, test_ratio, new_node_ratio, seed)
