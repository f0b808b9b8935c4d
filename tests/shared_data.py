"""The project's data folder (shared/data) for the tests that need it.

The library reads only the path it is given or $PYG_MSPIPE_DATA; the search
of the project layout lives here (and in benchmarks/common.py,
examples/tgn.py).
"""
from __future__ import annotations

import os
from pathlib import Path

from pyg_mspipe import datasets

WIKIPEDIA_FILE = "wikipedia_edges.csv.gz"


def find_wikipedia() -> Path | None:
    """The Wikipedia file in $PYG_MSPIPE_DATA, else in ./shared/data or
    ../shared/data of the working directory or of the repository; None if it
    is nowhere."""
    candidates = []
    if os.environ.get("PYG_MSPIPE_DATA"):
        candidates.append(Path(os.environ["PYG_MSPIPE_DATA"]) / WIKIPEDIA_FILE)
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidates += [base / "shared" / "data" / WIKIPEDIA_FILE,
                       base.parent / "shared" / "data" / WIKIPEDIA_FILE]
    return next((path for path in candidates if path.is_file()), None)


def load_wikipedia(path=None, **kwargs):
    """:func:`pyg_mspipe.datasets.load_wikipedia`, on :func:`find_wikipedia`'s
    file when no path is given."""
    return datasets.load_wikipedia(find_wikipedia() if path is None else path, **kwargs)
