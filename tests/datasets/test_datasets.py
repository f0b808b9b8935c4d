"""Local dataset loaders."""
import gzip

import pytest
import torch

from pyg_mspipe.datasets import load_college_msg

from ..shared_data import find_wikipedia, load_wikipedia


def test_college_msg_is_bundled_and_sane():
    data = load_college_msg()
    assert data.num_events == 59835 and data.num_nodes == 1899
    assert int(data.src.min()) >= 0 and int(data.dst.max()) <= 1898
    assert bool((data.t[1:] >= data.t[:-1]).all()) and int(data.t[0]) == 0
    assert data.msg.shape == (59835, 16)
    assert torch.equal(load_college_msg(seed=3).msg, load_college_msg(seed=3).msg)
    assert torch.count_nonzero(load_college_msg(features="zeros").msg) == 0


@pytest.mark.skipif(find_wikipedia() is None, reason="shared/data not present")
def test_wikipedia_real_stream():
    data = load_wikipedia()
    assert data.num_events == 157474 and data.num_nodes == 9227
    assert int(data.src.max()) <= 8226 and int(data.dst.min()) >= 8227
    assert data.msg.shape == (157474, 172)


def test_wikipedia_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_wikipedia(tmp_path / "missing.csv.gz")
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="header"):
        load_wikipedia(bad)
    good = tmp_path / "small.csv.gz"
    with gzip.open(good, "wt") as f:
        f.write("u,i,ts,label\n0,2,0,0\n1,2,5,1\n")
    data = load_wikipedia(good, msg_dim=4)
    assert data.src.tolist() == [0, 1] and data.y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="features"):
        load_college_msg(features="ones")
