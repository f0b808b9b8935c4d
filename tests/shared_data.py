"""The project's data folder (shared/data) for the tests that need it.

The library reads only the path it is given or $PYG_MSPIPE_DATA; the search
of the project layout lives here (and in benchmarks/common.py,
examples/tgn.py).
"""
from __future__ import annotations

from pathlib import Path

from pyg_mspipe import datasets
from pyg_mspipe.engine.data import find_data_file

WIKIPEDIA_FILE = "wikipedia_edges.csv.gz"


def find_wikipedia() -> Path | None:
    """The Wikipedia file of the project layout, or None."""
    return find_data_file(WIKIPEDIA_FILE)


def load_wikipedia(path=None, **kwargs):
    """:func:`pyg_mspipe.datasets.load_wikipedia`, on :func:`find_wikipedia`'s
    file when no path is given."""
    return datasets.load_wikipedia(find_wikipedia() if path is None else path, **kwargs)
