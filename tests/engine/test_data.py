"""engine.data.resolve_data: the project-layout names, then load_dataset."""
import gzip

import pytest
import torch

from pyg_mspipe.datasets import DataFormatError, load_dataset, load_wikipedia
from pyg_mspipe.engine.data import resolve_data


def test_wikipedia_from_the_project_layout(tmp_path, monkeypatch):
    path = tmp_path / "wikipedia_edges.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("u,i,ts,label\n0,2,10,0\n1,2,15,1\n")
    monkeypatch.setenv("PYG_MSPIPE_DATA", str(tmp_path))
    data, reference = resolve_data("wikipedia"), load_wikipedia(path)
    assert all(torch.equal(data[key], reference[key]) for key in ("src", "dst", "t", "msg", "y"))
    assert data.msg.size(1) == 172 and data.t.tolist() == [0, 5]
    assert resolve_data("wikipedia", msg_dim=8, seed=1).msg.size(1) == 8
    with pytest.raises(DataFormatError, match="^wikipedia: format= and root= apply"):
        resolve_data("wikipedia", format="uits")


def test_wikipedia_missing(tmp_path, monkeypatch):
    import pyg_mspipe.engine.data as engine_data

    monkeypatch.setattr(engine_data, "find_data_file", lambda name: None)
    with pytest.raises(DataFormatError) as info:
        resolve_data("wikipedia")
    assert str(info.value) == ("wikipedia: wikipedia_edges.csv.gz is not in $PYG_MSPIPE_DATA, "
                               "shared/data or ../shared/data")


def test_other_specs_go_to_load_dataset(tmp_path):
    data = resolve_data("synthetic:events=50,nodes=5", seed=2)
    assert torch.equal(data.src, load_dataset("synthetic:events=50,nodes=5", seed=2).src)
    assert torch.equal(resolve_data("college").src, load_dataset("college").src)
    with pytest.raises(DataFormatError, match="no such file"):
        resolve_data(str(tmp_path / "nothing.csv"))
