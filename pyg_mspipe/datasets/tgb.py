r"""TGB's link-property datasets (:obj:`tgbl-*`), read offline from the
folder TGB downloaded them to: the edge list, TGB's chronological split and
TGB's pre-generated validation and test negatives."""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from pyg_mspipe.datasets.errors import DataFormatError
from pyg_mspipe.datasets.formats import Events

__all__ = ["TGBLinkData", "load_tgb", "TGB_LINK_DATASETS"]

_LAYOUT = "'user_id,item_id,timestamp,state_label,features...' after a header line"
_WIKI = ("load_edgelist_wiki", _LAYOUT, "features")
_COIN = ("csv_to_pd_data_sc", "'time,src,dst,weight' after a header line", "weight")

#: TGB dataset -> (py-tgb's parser of its edge list, the edge list's columns,
#: the edge features TGB's ``LinkPropPredDataset.pre_process`` keeps).
_READERS = {
    "tgbl-wiki": _WIKI, "tgbl-subreddit": _WIKI, "tgbl-lastfm": _WIKI,
    "tgbl-enron": _WIKI, "tgbl-uci": _WIKI, "tgbl-coin": _COIN, "tgbl-review": _COIN,
    "tgbl-comment": ("csv_to_pd_data_rc", "'ts,src,dst,num_words,score' after a header "
                     "line", "features+weight"),
    "tgbl-flight": ("csv_to_pd_data", "'timestamp,src,dst,callsign,typecode' after a "
                    "header line", "features"),
}

#: The TGB datasets read: TGB's link-property datasets with untyped edges.
TGB_LINK_DATASETS = tuple(_READERS)

#: TGB's split: the last 15% of time for validation, then 15% for test.
VAL_RATIO = TEST_RATIO = 0.15

_EDGELIST = re.compile(r"(?P<name>[a-z]+-[a-z]+)_edgelist(_v(?P<version>[0-9]+))?\.csv")


@dataclass
class TGBLinkData:
    r"""A TGB link-property dataset (:func:`load_tgb`).

    Attributes:
        name (str): TGB's name, e.g. :obj:`"tgbl-wiki"`.
        data (TemporalData): The events, TGB's node ids and timestamps
            (:obj:`msg`: the edge features).
        num_train, num_val, num_test (int): TGB's split: the first
            :obj:`num_train` events, then :obj:`num_val`, then :obj:`num_test`.
        val_negatives, test_negatives (torch.Tensor): TGB's negative
            destinations of each validation / test event, in event order,
            :obj:`[num_val, K]` / :obj:`[num_test, K]`, rows with fewer than
            :obj:`K` padded with :obj:`-1`.
    """
    name: str
    data: TemporalData
    num_train: int
    num_val: int
    num_test: int
    val_negatives: Tensor
    test_negatives: Tensor

    def negatives(self, part: str) -> Tensor:
        r"""The negatives of :obj:`part` (:obj:`"val"` or :obj:`"test"`)."""
        if part not in ("val", "test"):
            raise ValueError(f"'part' must be 'val' or 'test' (got {part!r})")
        return self.val_negatives if part == "val" else self.test_negatives


def _tgb(spec: str):
    try:
        from tgb.utils import info, pre_process
    except ImportError as error:
        raise DataFormatError(spec, None, f"tgb:<dir> needs py-tgb (pip install "
                              f"'pyg-mspipe[tgb]'): {error}") from None
    return info, pre_process


def _find_name(root: Path, versions: dict) -> tuple[str, str]:
    r"""The dataset's name and file suffix (:obj:`""` or :obj:`"_v<version>"`
    of py-tgb's current version), from the edge list in :obj:`root`."""
    found = {}
    for path in root.iterdir():
        match = _EDGELIST.fullmatch(path.name)
        if match:
            found.setdefault(match["name"], []).append(path.name)
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise DataFormatError(root, None, f"{what} TGB edge list '<name>_edgelist[_v<N>].csv' "
                              "here (tgb:<dir> is the folder TGB downloaded one dataset to, "
                              "e.g. datasets/tgbl_wiki)")
    name, files = next(iter(found.items()))
    if name not in TGB_LINK_DATASETS:
        raise DataFormatError(root / files[0], None, f"TGB dataset {name!r} is not supported "
                              "(one of " + ", ".join(TGB_LINK_DATASETS) + ")")
    version = int(versions.get(name, 1))
    suffix = "" if version <= 1 else f"_v{version}"
    if f"{name}_edgelist{suffix}.csv" not in files:
        raise DataFormatError(root / files[0], None, f"py-tgb reads version {version} of "
                              f"{name}, '{name}_edgelist{suffix}.csv' (download it again with "
                              "py-tgb)")
    return name, suffix


def _read_edges(name: str, path: Path, pre_process) -> tuple[np.ndarray, ...]:
    r"""The edge list as py-tgb reads it (its parser for :obj:`name`: for
    JODIE's layout, items numbered after the users; else nodes numbered in
    order of appearance), checked."""
    parser, layout, kept = _READERS[name]
    try:  # (py-tgb's parsers draw progress bars)
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            df, feat, _ = getattr(pre_process, parser)(str(path))
    except (ValueError, TypeError, IndexError, KeyError, OSError) as error:
        if parser == "load_edgelist_wiki":
            _diagnose(path)
        raise DataFormatError(path, None, f"not a TGB {name} edge list ({layout}): "
                              f"{' '.join(str(error).split())}") from None
    src, dst, t, w = (np.asarray(df[key]) for key in ("u", "i", "ts", "w"))
    feat = np.asarray(feat)
    with np.errstate(invalid="ignore"):
        bad = any(v.dtype.kind not in "iuf" for v in (src, dst, t)) or any(
            v.dtype.kind == "f" and not np.array_equal(v, np.floor(v)) for v in (src, dst)) or (
            feat.size > 0 and feat.dtype.kind not in "iuf")
    if bad:  # (only py-tgb's JODIE-layout parser passes text through)
        _diagnose(path)
        raise DataFormatError(path, None, f"not a TGB {name} edge list ({layout})")
    if kept == "weight":
        feat = w.reshape(-1, 1)
    elif kept == "features+weight":
        feat = np.concatenate([feat, w.reshape(-1, 1)], axis=1)
    if src.size == 0:
        raise DataFormatError(path, None, "no events after the header")
    with np.errstate(invalid="ignore"):
        wide = t.astype(np.float64)
        bad_t = ~np.isfinite(wide) | (wide >= 2.0**63) | (wide < -2.0**63)
    for mask, what in (((src < 0) | (dst < 0), "a node id is negative"),
                       (bad_t, "the timestamp is not a number or does not fit in int64")):
        row = np.flatnonzero(mask)
        if row.size:  # (line 1 is the header)
            raise DataFormatError(path, int(row[0]) + 2, what)
    t = t.astype(np.int64)  # TGB's timestamps.astype(int)
    row = np.flatnonzero(t[1:] < t[:-1])
    if row.size:
        raise DataFormatError(path, int(row[0]) + 3, "timestamp before the previous event's "
                              "(events must be sorted by time)")
    return src.astype(np.int64), dst.astype(np.int64), t, feat.astype(np.float32)


def _diagnose(path: Path):
    r"""Raises naming the first line whose columns py-tgb cannot read (the
    file read again as py-tgb reads it, only when that failed)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, skiprows=1, header=None)
    except (ValueError, OSError) as error:
        raise DataFormatError(path, None, f"not a TGB edge list ({_LAYOUT}): "
                              f"{' '.join(str(error).split())}") from None
    if df.shape[1] < 3:
        raise DataFormatError(path, None, f"expected the columns {_LAYOUT}, got "
                              f"{df.shape[1]}")
    names = {0: "user_id", 1: "item_id", 2: "timestamp"}
    for column in range(df.shape[1]):
        if column == 3:
            continue  # (py-tgb does not read the state label)
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & df[column].notna().to_numpy()
        if column < 2:
            with np.errstate(invalid="ignore"):
                bad |= np.isnan(values) | (values != np.floor(values))
        row = np.flatnonzero(bad)
        if row.size:
            name = names.get(column, "a feature")
            want = "an integer" if column < 2 else "a number"
            raise DataFormatError(path, int(row[0]) + 2, f"column {column + 1} ({name}) is "
                                  f"not {want}: wrong columns? (expected {_LAYOUT})")


def _split_sizes(t: np.ndarray) -> tuple[int, int, int]:
    r"""TGB's :obj:`generate_splits`: time quantiles, train :obj:`t <=
    val_time`, validation up to :obj:`test_time`, test after."""
    val_time, test_time = np.quantile(t, [1 - VAL_RATIO - TEST_RATIO, 1 - TEST_RATIO])
    num_train = int((t <= val_time).sum())
    num_val = int((t <= test_time).sum()) - num_train
    return num_train, num_val, t.size - num_train - num_val


def _read_negatives(path: Path, part: str, src: np.ndarray, dst: np.ndarray,
                    t: np.ndarray) -> Tensor:
    r"""TGB's pickle of :obj:`{(src, dst, t): negative destinations}` for the
    events of a split part, as :obj:`[E, K]` rows in event order, padded with
    :obj:`-1`."""
    split = "validation" if part == "val" else "test"
    if not path.is_file():
        raise DataFormatError(path, None, f"no such file (TGB's {split} negatives)")
    try:
        with open(path, "rb") as f:
            table = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, ImportError, IndexError) as error:
        raise DataFormatError(path, None, f"cannot read TGB's {split} negatives "
                              f"({type(error).__name__}: {error})") from None
    if not isinstance(table, dict) or len(table) == 0:
        raise DataFormatError(path, None, f"expected TGB's dict {{(src, dst, t): negative "
                              f"destinations}}, got {type(table).__name__}"
                              + (" (empty)" if isinstance(table, dict) else ""))
    try:
        keys = np.array(list(table.keys()), dtype=np.int64)
        rows = [np.asarray(value).reshape(-1) for value in table.values()]
    except (ValueError, TypeError, OverflowError):
        keys = None
    if keys is None or keys.ndim != 2 or keys.shape[1] != 3:
        raise DataFormatError(path, None, "expected keys (src, dst, t) of integers: not TGB "
                              "link negatives")
    lengths = np.array([row.size for row in rows])
    negatives = np.full((len(rows), max(int(lengths.max()), 1)), -1, dtype=np.int64)
    flat = np.concatenate(rows) if rows else np.empty(0)
    if flat.dtype.kind not in "iuf" or (flat.dtype.kind == "f" and
                                        not np.array_equal(flat, np.floor(flat))):
        raise DataFormatError(path, None, "negative destinations are not all integers")
    flat = flat.astype(np.int64)
    if flat.size and flat.min() < 0:
        raise DataFormatError(path, None, "a negative destination is negative")
    negatives[np.arange(negatives.shape[1]) < lengths[:, None]] = flat
    # Match the split's events to the keys (both sorted lexicographically).
    events = np.stack([src, dst, t], axis=1)
    both = torch.from_numpy(np.concatenate([keys, events]))
    _, inverse = torch.unique(both, dim=0, return_inverse=True)
    inverse = inverse.numpy()
    key_of = np.full(inverse.max() + 1, -1, dtype=np.int64)
    key_of[inverse[:len(keys)]] = np.arange(len(keys))
    event_key = key_of[inverse[len(keys):]]
    missing = np.flatnonzero(event_key < 0)
    if missing.size:
        s, d, ts = events[missing[0]]
        raise DataFormatError(path, None, f"no negatives for {split} event ({s}, {d}, {ts}) "
                              f"(and {missing.size - 1} more): not the negatives of this "
                              "edge list's split")
    used = np.zeros(len(keys), dtype=bool)
    used[event_key] = True
    extra = np.flatnonzero(~used)
    if extra.size:
        s, d, ts = keys[extra[0]]
        raise DataFormatError(path, None, f"negatives for ({s}, {d}, {ts}), not a {split} "
                              f"event (and {extra.size - 1} more): not the negatives of this "
                              "edge list's split")
    return torch.from_numpy(negatives[event_key])


def load_tgb(path: str | os.PathLike, *, msg_dim: int | None = None, seed: int = 0,
             spec: str | None = None) -> TGBLinkData:
    r"""Loads a TGB link-property dataset offline from the folder TGB
    downloaded it to (:obj:`datasets/tgbl_wiki` for :obj:`tgbl-wiki`): its
    events, TGB's chronological split and its validation and test negatives
    (see :doc:`datasets`). Edge features are the file's, zero-padded to
    :obj:`msg_dim`, or seeded ones for a file without. Needs py-tgb
    (:obj:`pip install 'pyg-mspipe[tgb]'`); raises :class:`DataFormatError`
    for a missing or malformed file.

    Args:
        path (str): The dataset's folder.
        msg_dim (int, optional): Edge feature size. (default: :obj:`None`)
        seed (int, optional): Seed of generated features. (default: :obj:`0`)
        spec (str, optional): The spec the folder came from, as errors name
            it. (default: :obj:`None`)
    """
    spec = str(path) if spec is None else spec
    info, pre_process = _tgb(spec)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataFormatError(spec, None, "no such folder (tgb:<dir> is the folder TGB "
                              "downloaded one dataset to, e.g. datasets/tgbl_wiki)")
    name, suffix = _find_name(root, info.DATA_VERSION_DICT)
    src, dst, t, feat = _read_edges(name, root / f"{name}_edgelist{suffix}.csv", pre_process)
    num_train, num_val, num_test = _split_sizes(t)
    if min(num_train, num_val, num_test) == 0:
        raise DataFormatError(root, None, f"{t.size} events leave an empty TGB split")
    parts = {"val": slice(num_train, num_train + num_val),
             "test": slice(num_train + num_val, None)}
    negatives = {part: _read_negatives(root / f"{name}_{part}_ns{suffix}.pkl", part,
                                       src[rows], dst[rows], t[rows])
                 for part, rows in parts.items()}
    from pyg_mspipe.datasets.load import _with_features

    data = _with_features(spec, Events(torch.from_numpy(src), torch.from_numpy(dst),
                                       torch.from_numpy(t), None, torch.from_numpy(feat)),
                          msg_dim, seed)
    return TGBLinkData(name, data, num_train, num_val, num_test, negatives["val"],
                       negatives["test"])
