r"""Finding the project's data files (the training engine's concern, not the
library's: :func:`pyg_mspipe.datasets.load_wikipedia` reads only the path it
is given or :obj:`$PYG_MSPIPE_DATA`)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["find_data_file"]

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
