r"""The event-file formats: how each one's columns are read, checked and
numbered (see :obj:`docs/datasets.md` for the references each follows)."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from pyg_mspipe.datasets._text import (
    Table,
    TextLayout,
    first_line,
    locate_row,
    read_table,
)
from pyg_mspipe.datasets.errors import DataFormatError

__all__ = ["FORMATS", "detect_format", "read_events"]

#: Format name -> one-line description.
FORMATS = {
    "snap": "whitespace 'src dst t [weight]' lines, '#' comments (SNAP temporal "
            "networks such as CollegeMsg); the weight becomes a 1-dim edge feature",
    "jodie": "CSV 'user,item,timestamp,state_label,features...' after a header line "
             "(JODIE's wikipedia/reddit/mooc/lastfm, TGB tgbl-* of that shape); "
             "items numbered after the users",
    "ml": "TGN/DyGLib 'ml_<name>.csv' (header ',u,i,ts,label,idx', 1-based ids) with "
          "optional 'ml_<name>.npy' edge features next to it (row idx per event)",
    "uits": "CSV 'u,i,ts[,label]' after a header line, ids already in one node space "
            "(like wikipedia_edges.csv.gz)",
}


class Events(NamedTuple):
    r"""The events of a file, numbered and checked: :obj:`src`, :obj:`dst`,
    :obj:`t` (int64, nodes :obj:`0..N-1`, time from :obj:`0`), :obj:`y`
    (int64 labels or :obj:`None`) and :obj:`msg` (the file's float32 edge
    features or :obj:`None`)."""
    src: Tensor
    dst: Tensor
    t: Tensor
    y: Tensor | None
    msg: Tensor | None


class _Columns(NamedTuple):
    layout: TextLayout              # with the allowed widths
    ids: tuple[tuple[int, str], tuple[int, str]]
    time: int
    label: int | None               # None: no label column
    extra: tuple[int, str] | None   # another integer column (ml's idx)
    features: int | None            # first feature column, if any
    bipartite: bool


def _csv(widths, columns) -> TextLayout:
    return TextLayout(",", None, True, widths, f"the columns {columns}")


_COLUMNS = {
    "snap": _Columns(TextLayout(None, "#", False, (3, 4), "the columns 'src dst t [weight]'"),
                     ((0, "src id"), (1, "dst id")), 2, None, None, 3, False),
    "jodie": _Columns(_csv((4, None), "'user,item,timestamp,state_label,features...'"),
                      ((0, "user id"), (1, "item id")), 2, 3, None, 4, True),
    "ml": _Columns(_csv((6, 6), "',u,i,ts,label,idx'"),
                   ((1, "u id"), (2, "i id")), 3, 4, (5, "idx"), None, False),
    "uits": _Columns(_csv((3, 4), "'u,i,ts[,label]'"),
                     ((0, "u id"), (1, "i id")), 2, 3, None, None, False),
}


def _fields(line: str) -> list[str]:
    return [field.strip() for field in line.split(",")]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | os.PathLike) -> str:
    r"""The format of :obj:`path`, from its first non-empty line (its name
    does not matter): a ``#`` comment or whitespace-separated numbers:
    :obj:`"snap"`; the header :obj:`,u,i,ts,...`: :obj:`"ml"`;
    :obj:`u,i,ts,...`: :obj:`"uits"`; any other CSV header: :obj:`"jodie"`."""
    line = first_line(path)
    if line is None:
        raise DataFormatError(path, None, "empty file")
    if line.startswith("#"):
        return "snap"
    if "," in line:
        names = _fields(line)
        if names[0] == "" and names[1:4] == ["u", "i", "ts"]:
            return "ml"
        if names[:3] == ["u", "i", "ts"]:
            return "uits"
        if not _is_number(names[0]):
            return "jodie"
        raise DataFormatError(path, None, "a CSV without a header line: cannot tell its "
                              "format, pass format= (one of " + ", ".join(FORMATS) + ")")
    if all(_is_number(field) for field in line.split()):
        return "snap"
    raise DataFormatError(path, None, "cannot tell the format from the first line, "
                          "pass format= (one of " + ", ".join(FORMATS) + ")")


def _check_header(path, fmt: str, header: str) -> None:
    names = _fields(header)
    if fmt == "jodie" and _is_number(names[0]):
        raise DataFormatError(path, 1, "expected a header line 'user,item,timestamp,"
                              "state_label,...' (got a data line)")
    if fmt == "ml" and (names[0] != "" or names[1:] != ["u", "i", "ts", "label", "idx"]):
        raise DataFormatError(path, 1, f"expected the header ',u,i,ts,label,idx' (got {header!r})")
    if fmt == "uits" and (names[:3] != ["u", "i", "ts"] or names[3:] not in ([], ["label"])):
        raise DataFormatError(path, 1, f"expected a header 'u,i,ts' or 'u,i,ts,label' "
                              f"(got {header!r})")


def _check(path, fmt: str, table: Table) -> None:
    r"""Every check of a (possibly partial) table, the first line at fault
    raised: the header, the width the header names, then the values."""
    cols = _COLUMNS[fmt]
    if table.header is not None:
        _check_header(path, fmt, table.header)
    values = table.values
    if values.shape[0] == 0:
        return
    named = len(_fields(table.header)) if fmt == "uits" else values.shape[1]
    if named != values.shape[1]:  # uits: as many columns as the header names
        line, _ = locate_row(path, cols.layout, 0)
        raise DataFormatError(path, line, f"expected {named} fields as the header "
                              f"names, got {values.shape[1]}")
    _check_values(path, cols, values)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _bad_integers(column: np.ndarray, negative: bool) -> np.ndarray:
    r"""Rows that are not finite integers below 2**53 (or are negative)."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(column) | (column != np.floor(column)) | (np.abs(column) >= 2.0**53)
        return bad | (column < 0) if negative else bad


#: 2**63: int64 holds the integers in [-2**63, 2**63).
_INT64_END = 2.0**63


class _Fault(NamedTuple):
    row: int      # first data row (0-based) failing the check
    column: int
    kind: str     # "id", "time", "range", "span", "order" or "label"
    name: str     # the column, as the message names it


def _faults(cols: _Columns, values: np.ndarray) -> list[_Fault]:
    r"""The first failing row of each check (vectorised, no line located)."""
    faults = []
    for column, name in cols.ids + ((cols.extra,) if cols.extra else ()):
        faults.append((_bad_integers(values[:, column], negative=True), column, "id", name))
    t = values[:, cols.time]
    faults.append((~np.isfinite(t), cols.time, "time", "timestamp"))
    with np.errstate(invalid="ignore"):
        # int64 holds [-2**63, 2**63); so must the times from the first event.
        faults.append(((t >= _INT64_END) | (t < -_INT64_END), cols.time, "range", "timestamp"))
        span = np.trunc(t) - np.trunc(t[0]) >= _INT64_END
        faults.append((span, cols.time, "span", "timestamp"))
        order = np.concatenate([[False], t[1:] < t[:-1]])
    faults.append((order, cols.time, "order", "timestamp"))
    if cols.label is not None and values.shape[1] > cols.label:
        label = _bad_integers(values[:, cols.label], negative=False)
        faults.append((label, cols.label, "label", "label"))
    return [_Fault(row, column, kind, name) for mask, column, kind, name in faults
            if (row := _first(mask)) is not None]


def _check_values(path, cols: _Columns, values: np.ndarray) -> None:
    r"""Raises naming the first line (in file order) that fails a check."""
    faults = _faults(cols, values)
    if not faults:
        return
    fault = min(faults, key=lambda fault: fault.row)
    line, fields = locate_row(path, cols.layout, fault.row)
    text = fields[fault.column]
    if fault.kind == "order":
        before = locate_row(path, cols.layout, fault.row - 1)[1][fault.column]
        reason = (f"timestamp {text} is before the previous event's {before} "
                  "(events must be sorted by time)")
    elif fault.kind == "id":
        reason = f"{fault.name} {text!r} is " + (
            "negative" if text.startswith("-") else "not an integer")
    elif fault.kind == "time":
        reason = f"timestamp {text!r} is not a number"
    elif fault.kind == "range":
        reason = f"timestamp {text!r} does not fit in int64"
    elif fault.kind == "span":
        first = locate_row(path, cols.layout, 0)[1][fault.column]
        reason = (f"timestamp {text!r} is 2**63 or more after the first event's {first!r} "
                  "(times from the first event must fit in int64)")
    else:
        reason = f"label {text!r} is not an integer"
    raise DataFormatError(path, line, reason)


def _number(ids: np.ndarray) -> tuple[np.ndarray, int]:
    r"""Ids -> :obj:`0..n-1` in increasing order of the id, and n."""
    low, high = int(ids.min()), int(ids.max())
    if high - low < 2 * ids.size:  # dense ids: no sort needed if none is missing
        present = np.zeros(high - low + 1, dtype=bool)
        present[ids - low] = True
        if present.all():
            return ids - low, present.size
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.reshape(-1), unique.size


def _edge_features(path: Path, idx: np.ndarray, cols: _Columns) -> np.ndarray | None:
    r"""DyGLib's :obj:`ml_<name>.npy` rows :obj:`idx` (row 0 is padding), if
    the file exists."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    npy = path.with_name(name[:-4] + ".npy" if name.endswith(".csv") else name + ".npy")
    if not npy.is_file():
        return None
    try:
        table = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataFormatError(npy, None, f"cannot read edge features ({error})") from None
    if table.ndim != 2:
        raise DataFormatError(npy, None, f"expected a 2-D array of edge features, got shape "
                              f"{tuple(table.shape)}")
    row = _first(idx >= table.shape[0])
    if row is not None:
        line, fields = locate_row(path, cols.layout, row)
        raise DataFormatError(path, line, f"idx {fields[cols.extra[0]]} has no row in "
                              f"{npy.name} ({table.shape[0]} rows)")
    return table[idx].astype(np.float32)


def read_events(path: str | os.PathLike, format: str | None = None) -> Events:
    r"""Reads, checks and numbers the events of :obj:`path` (gzip or not).

    Node ids become :obj:`0..N-1` in increasing order of the file's ids; for
    :obj:`"jodie"` users and items separately, items after the users (as
    PyG's :class:`~torch_geometric.datasets.JODIEDataset` numbers them when
    the ids are contiguous). Timestamps are truncated to integers (as PyG
    does) and shifted to start at :obj:`0`.

    Args:
        path (str): The file.
        format (str, optional): One of :obj:`FORMATS`; detected by
            :func:`detect_format` if not given. (default: :obj:`None`)
    """
    path = Path(path)
    if format is None:
        format = detect_format(path)
    if format not in _COLUMNS:
        raise DataFormatError(path, None, f"unknown format {format!r} (one of "
                              + ", ".join(FORMATS) + ")")
    cols = _COLUMNS[format]
    values = read_table(path, cols.layout, partial(_check, path, format)).values
    if values.shape[0] == 0:
        raise DataFormatError(path, None, "empty file" if not cols.layout.header
                              else "no events after the header")

    (u_col, _), (i_col, _) = cols.ids
    u = values[:, u_col].astype(np.int64)
    i = values[:, i_col].astype(np.int64)
    if cols.bipartite:
        src, num_users = _number(u)
        dst = _number(i)[0] + num_users
    else:
        both = _number(np.concatenate([u, i]))[0]
        src, dst = both[:u.size], both[u.size:]
    t = values[:, cols.time].astype(np.int64)
    t -= t[0]  # sorted, and truncation keeps the order: t[0] is the smallest
    y = None
    if cols.label is not None and values.shape[1] > cols.label:
        y = torch.from_numpy(values[:, cols.label].astype(np.int64))
    msg = None
    if cols.features is not None and values.shape[1] > cols.features:
        msg = values[:, cols.features:].astype(np.float32)
    if cols.extra is not None:
        msg = _edge_features(path, values[:, cols.extra[0]].astype(np.int64), cols)
    return Events(torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(t), y,
                  None if msg is None else torch.from_numpy(msg))
