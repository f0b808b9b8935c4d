"""load_wikipedia reads the path it is given or $PYG_MSPIPE_DATA, nothing else
(the search of the project's shared/data is not the library's)."""
import gzip

import pytest

from pyg_mspipe.datasets import load_wikipedia


def test_wikipedia_from_pyg_mspipe_data(tmp_path, monkeypatch):
    with gzip.open(tmp_path / "wikipedia_edges.csv.gz", "wt") as f:
        f.write("u,i,ts,label\n0,2,0,0\n1,2,5,1\n")
    monkeypatch.setenv("PYG_MSPIPE_DATA", str(tmp_path))
    data = load_wikipedia(msg_dim=4)
    assert data.src.tolist() == [0, 1] and data.t.tolist() == [0, 5]


def test_wikipedia_without_path_or_pyg_mspipe_data(tmp_path, monkeypatch):
    # Even with a shared/data next to the working directory, the library
    # does not look there.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    with gzip.open(tmp_path / "shared" / "data" / "wikipedia_edges.csv.gz", "wt") as f:
        f.write("u,i,ts,label\n0,2,0,0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYG_MSPIPE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="PYG_MSPIPE_DATA"):
        load_wikipedia()
    monkeypatch.setenv("PYG_MSPIPE_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_wikipedia()


def test_no_finder_in_the_library():
    import pyg_mspipe.datasets

    assert not hasattr(pyg_mspipe.datasets, "find_wikipedia")
