r"""One entry point from a data spec (a bundled name, a file, a synthetic
stream or one of PyG's JODIE datasets) to a :class:`TemporalData`."""
from __future__ import annotations

import math
import os
import urllib.error
from pathlib import Path

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.datasets._features import edge_features
from pyg_mspipe.datasets.college_msg import load_college_msg
from pyg_mspipe.datasets.errors import DataFormatError
from pyg_mspipe.datasets.formats import FORMATS, Events, read_events
from pyg_mspipe.datasets.synthetic import synthetic_events
from pyg_mspipe.datasets.tgb import load_tgb

__all__ = ["load_dataset", "bundled_datasets"]

#: Edge feature size given to data without edge features.
DEFAULT_MSG_DIM = 16

_BUNDLED = {
    "college": "SNAP CollegeMsg (alias CollegeMsg): 59,835 messages between 1,899 "
               "students, no edge features (seeded ones given)",
}
_ALIASES = {"college": "college", "collegemsg": "college"}
_SYNTHETIC_KEYS = ("events", "nodes", "seed", "alpha", "msg_dim")
_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def bundled_datasets() -> list[tuple[str, str]]:
    r"""The datasets shipped with the package: (name, one-line description)."""
    return list(_BUNDLED.items())


def _with_features(spec, events: Events, msg_dim: int | None, seed: int,
                   features: str = "random") -> TemporalData:
    r"""The events as :class:`TemporalData`: the file's features, zero-padded
    on the right to :obj:`msg_dim` if that is larger, or :obj:`features`
    (seeded or zero) of :obj:`msg_dim` (default :obj:`DEFAULT_MSG_DIM`) if
    the file has none."""
    msg = events.msg
    if msg is None or msg.size(1) == 0:
        msg = edge_features(events.src.numel(), DEFAULT_MSG_DIM if msg_dim is None else msg_dim,
                            features, seed)
    elif msg_dim is not None and msg_dim != msg.size(1):
        if msg_dim < msg.size(1):
            raise DataFormatError(spec, None, f"msg_dim={msg_dim} is smaller than the "
                                  f"{msg.size(1)} edge features of the data")
        msg = torch.nn.functional.pad(msg, (0, msg_dim - msg.size(1)))
    data = TemporalData(src=events.src, dst=events.dst, t=events.t, msg=msg)
    if events.y is not None:
        data.y = events.y
    return data


def _count(spec: str, key: str, text: str) -> int:
    scale = _SUFFIXES.get(text[-1:].lower(), 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise DataFormatError(spec, None, f"{key}={text!r} is not an integer")
    return int(value)


def _synthetic(spec: str, msg_dim: int | None, seed: int) -> TemporalData:
    params = {"seed": seed, "alpha": 1.0, "msg_dim": DEFAULT_MSG_DIM if msg_dim is None
              else msg_dim}
    given = spec.split(":", 1)[1]
    for item in filter(None, given.split(",")):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or key not in _SYNTHETIC_KEYS:
            raise DataFormatError(spec, None, f"expected key=value with a key among "
                                  f"{', '.join(_SYNTHETIC_KEYS)} (got {item!r})")
        if key == "alpha":
            try:
                params[key] = float(text)
            except ValueError:
                raise DataFormatError(spec, None, f"alpha={text!r} is not a number") from None
        else:
            params[key] = _count(spec, key, text)
    missing = [key for key in ("events", "nodes") if key not in params]
    if missing:
        raise DataFormatError(spec, None, "missing " + " and ".join(
            f"{key}=" for key in missing) + " (synthetic:events=...,nodes=...)")
    try:
        return synthetic_events(params["events"], params["nodes"], alpha=params["alpha"],
                                msg_dim=params["msg_dim"], seed=params["seed"])
    except ValueError as error:
        names = {"num_events": "events", "num_nodes": "nodes"}
        reason = str(error)
        for old, new in names.items():
            reason = reason.replace(f"'{old}'", f"'{new}'")
        raise DataFormatError(spec, None, reason) from None


def _refuse_code(processed: Path):
    # PyG loads its processed files weights-only but falls back to a full
    # unpickle when that fails, so a planted file would run code: refuse any
    # whose pickle names a global beyond torch's and PyG's allow-lists.
    for path in sorted(processed.glob("*.pt")):
        try:
            unsafe = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except (ValueError, RuntimeError) as error:  # not a torch.save zip file
            unsafe = [f"unreadable: {error}"]
        if unsafe:
            raise DataFormatError(path, None, f"refused: loading it would run code "
                                  f"({', '.join(unsafe)}); delete it and PyG rebuilds it "
                                  f"from the raw file")


def _jodie(spec: str, name: str, root: str | None, msg_dim: int | None,
           seed: int, features: str) -> TemporalData:
    r"""PyG's :class:`~torch_geometric.datasets.JODIEDataset`, checked, its
    time made relative."""
    import torch_geometric
    from torch_geometric.datasets import JODIEDataset

    key = name.lower()
    if key not in JODIEDataset.names:
        raise DataFormatError(spec, None, f"unknown JODIE dataset {name!r} (one of "
                              + ", ".join(JODIEDataset.names) + ")")
    root = (os.path.join(torch_geometric.get_home_dir(), "jodie") if root is None
            else os.path.expanduser(root))
    raw = Path(root) / key / "raw" / f"{key}.csv"
    had_raw = raw.exists()
    _refuse_code(Path(root) / key / "processed")
    try:
        data = JODIEDataset(root, key)[0]
    except ImportError as error:
        raise DataFormatError(spec, None, f"PyG's JODIEDataset needs pandas "
                              f"(pip install pandas): {error}") from None
    except (urllib.error.URLError, OSError) as error:
        if had_raw:
            raise DataFormatError(raw, None, f"PyG could not load it ({error})") from None
        raw.unlink(missing_ok=True)  # no half-downloaded file left behind
        raise DataFormatError(spec, None, f"could not download {JODIEDataset.url.format(key)} "
                              f"({error}); put {key}.csv into {raw.parent}") from None
    except (ValueError, RuntimeError, EOFError) as error:  # pandas' parse, torch.load
        raise DataFormatError(raw, None, f"PyG could not read it ({error})") from None
    sound = (data.src.min() >= 0) & (data.dst.min() >= 0) & (data.t[1:] >= data.t[:-1]).all()
    if not bool(sound):
        read_events(raw, "jodie")  # raises, naming the line at fault
        raise DataFormatError(raw, None, "negative ids or unsorted timestamps")
    events = Events(data.src, data.dst, data.t - data.t.min(), data.y, data.msg)
    return _with_features(spec, events, msg_dim, seed, features)


def load_dataset(spec: str, *, format: str | None = None, msg_dim: int | None = None,
                 seed: int = 0, root: str | None = None,
                 features: str = "random") -> TemporalData:
    r"""Loads the events :obj:`spec` names, checked, nodes numbered
    :obj:`0..N-1`, time from :obj:`0`, labels (if any) in :obj:`y`.

    :obj:`spec` is a bundled name (:func:`bundled_datasets`),
    :obj:`"synthetic:events=E,nodes=N[,seed=S,alpha=A,msg_dim=D]"`
    (:func:`~pyg_mspipe.datasets.synthetic_events`), :obj:`"tgb:<dir>"`
    (:func:`~pyg_mspipe.datasets.load_tgb`), :obj:`"jodie:<name>"` (PyG's
    :class:`~torch_geometric.datasets.JODIEDataset`), or a file path in one
    of :obj:`FORMATS`, gzip or not (see :doc:`datasets`). Data without edge
    features get seeded standard normals (or zeros) of size :obj:`msg_dim`.
    Raises :class:`DataFormatError` (one line naming the file and line) for
    anything wrong with the spec or the file.

    Args:
        spec (str): What to load.
        format (str, optional): The file's format (files only); detected
            if not given. (default: :obj:`None`)
        msg_dim (int, optional): Edge feature size; :obj:`None` keeps the
            data's own, or :obj:`16` for data without. (default: :obj:`None`)
        seed (int, optional): Seed of generated features and synthetic
            streams. (default: :obj:`0`)
        root (str, optional): Folder of PyG's JODIE datasets
            (:obj:`jodie:<name>` only); :obj:`None` for
            :obj:`torch_geometric.get_home_dir()/jodie`. (default: :obj:`None`)
        features (str, optional): The features of data without any:
            :obj:`"random"` (seeded standard normals) or :obj:`"zeros"`.
            (default: :obj:`"random"`)
    """
    spec = os.fspath(spec)
    if features not in ("random", "zeros"):
        raise DataFormatError(spec, None, f"features must be 'random' or 'zeros' "
                              f"(got {features!r})")
    if msg_dim is not None and (isinstance(msg_dim, bool) or not isinstance(msg_dim, int)
                                or msg_dim < 0):
        raise DataFormatError(spec, None, f"msg_dim must be None or an integer >= 0 "
                              f"(got {msg_dim!r})")
    if format is not None and format not in FORMATS:
        raise DataFormatError(spec, None, f"unknown format {format!r} (one of "
                              + ", ".join(FORMATS) + ")")
    kind = spec.split(":", 1)[0].lower() if ":" in spec else None
    is_file = spec.lower() not in _ALIASES and kind not in ("synthetic", "jodie", "tgb")
    if format is not None and not is_file:
        raise DataFormatError(spec, None, "format= applies to files only")
    if root is not None and kind != "jodie":
        raise DataFormatError(spec, None, "root= applies to jodie:<name> only")
    if spec.lower() in _ALIASES:
        return load_college_msg(DEFAULT_MSG_DIM if msg_dim is None else msg_dim, features,
                                seed=seed)
    if kind == "synthetic":
        data = _synthetic(spec, msg_dim, seed)
        if features == "zeros":
            data.msg = torch.zeros_like(data.msg)
        return data
    if kind == "jodie":
        return _jodie(spec, spec.split(":", 1)[1], root, msg_dim, seed, features)
    if kind == "tgb":
        return load_tgb(spec.split(":", 1)[1], msg_dim=msg_dim, seed=seed, spec=spec).data
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataFormatError(spec, None, "no such file (nor a bundled name: "
                              + ", ".join(_BUNDLED) + ", synthetic:..., jodie:<name>, tgb:<dir>)")
    return _with_features(spec, read_events(path, format), msg_dim, seed, features)
