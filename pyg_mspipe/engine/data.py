r"""Finding the project's data files and resolving the command line's
:obj:`--data`."""
from __future__ import annotations

import os
from pathlib import Path

from torch_geometric.data import TemporalData

from pyg_mspipe.datasets import DataFormatError, load_dataset

__all__ = ["find_data_file", "resolve_data", "PROJECT_DATA"]

#: Names of the project layout -> (file in shared/data, its format, msg_dim).
PROJECT_DATA = {"wikipedia": ("wikipedia_edges.csv.gz", "uits", 172)}

#: The repository checkout this package was imported from (when it was).
_CHECKOUT = Path(__file__).resolve().parents[2]


def find_data_file(name: str) -> Path | None:
    r"""The file :obj:`name` in :obj:`$PYG_MSPIPE_DATA`, else in
    :obj:`shared/data` or :obj:`../shared/data` of the working directory or
    of the checkout; :obj:`None` if it is nowhere."""
    candidates = []
    if os.environ.get("PYG_MSPIPE_DATA"):
        candidates.append(Path(os.environ["PYG_MSPIPE_DATA"]) / name)
    for base in (Path.cwd(), _CHECKOUT):
        candidates += [base / "shared" / "data" / name, base.parent / "shared" / "data" / name]
    return next((path for path in candidates if path.is_file()), None)


def resolve_data(spec: str, *, format: str | None = None, msg_dim: int | None = None,
                 seed: int = 0, root: str | None = None,
                 features: str = "random") -> TemporalData:
    r"""The data :obj:`--data` names: a name of :obj:`PROJECT_DATA` (the
    file :func:`find_data_file` finds), else whatever
    :func:`~pyg_mspipe.datasets.load_dataset` takes, with the same
    arguments."""
    if spec in PROJECT_DATA:
        name, file_format, default_dim = PROJECT_DATA[spec]
        if format is not None or root is not None:
            raise DataFormatError(spec, None, "format= and root= apply to files and "
                                  "jodie:<name> only")
        path = find_data_file(name)
        if path is None:
            raise DataFormatError(spec, None, f"{name} is not in $PYG_MSPIPE_DATA, "
                                  "shared/data or ../shared/data")
        return load_dataset(str(path), format=file_format,
                            msg_dim=default_dim if msg_dim is None else msg_dim, seed=seed,
                            features=features)
    return load_dataset(spec, format=format, msg_dim=msg_dim, seed=seed, root=root,
                        features=features)
