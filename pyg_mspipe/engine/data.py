r"""Finding the project's data files (the training engine's concern, not the
library's: :func:`pyg_mspipe.datasets.load_wikipedia` reads only the path it
is given or :obj:`$PYG_MSPIPE_DATA`), and the data spec the command line
takes (:func:`resolve_data`)."""
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
    :obj:`shared/data` or :obj:`../shared/data` of the working directory or of
    the repository checkout (the project layout); :obj:`None` if it is
    nowhere.

    Args:
        name (str): File name, e.g. :obj:`"wikipedia_edges.csv.gz"`.
    """
    candidates = []
    if os.environ.get("PYG_MSPIPE_DATA"):
        candidates.append(Path(os.environ["PYG_MSPIPE_DATA"]) / name)
    for base in (Path.cwd(), _CHECKOUT):
        candidates += [base / "shared" / "data" / name, base.parent / "shared" / "data" / name]
    return next((path for path in candidates if path.is_file()), None)


def resolve_data(spec: str, *, format: str | None = None, msg_dim: int | None = None,
                 seed: int = 0, root: str | None = None,
                 features: str = "random") -> TemporalData:
    r"""The data the command line's :obj:`--data` names: a name of
    :obj:`PROJECT_DATA` (:obj:`"wikipedia"`: the file :func:`find_data_file`
    finds, with 172-dim seeded features as
    :func:`~pyg_mspipe.datasets.load_wikipedia` gives), else whatever
    :func:`~pyg_mspipe.datasets.load_dataset` takes (same arguments).

    Args:
        spec (str): What to load.
        format (str, optional): See :func:`~pyg_mspipe.datasets.load_dataset`.
        msg_dim (int, optional): See :func:`~pyg_mspipe.datasets.load_dataset`.
        seed (int, optional): See :func:`~pyg_mspipe.datasets.load_dataset`.
        root (str, optional): See :func:`~pyg_mspipe.datasets.load_dataset`.
        features (str, optional): See :func:`~pyg_mspipe.datasets.load_dataset`.
    """
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
