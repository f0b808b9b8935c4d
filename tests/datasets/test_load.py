"""load_dataset: every kind of spec, the feature size, PyG's JODIEDataset
from a raw file written in place (no network)."""
import pytest
import torch

from pyg_mspipe.datasets import (
    DataFormatError,
    bundled_datasets,
    load_college_msg,
    load_dataset,
    synthetic_events,
)
from pyg_mspipe.datasets._features import edge_features
from pyg_mspipe.datasets.load import DEFAULT_MSG_DIM

JODIE = ("user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n"
         "0,0,3.0,0,0.1,0.2\n1,0,7.0,1,0.3,0.4\n0,1,9.0,0,0.5,0.6\n2,1,9.0,0,0.7,0.8\n")


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a.keys())


def test_bundled():
    assert [name for name, _ in bundled_datasets()] == ["college"]
    assert all("\n" not in text for _, text in bundled_datasets())
    data = load_dataset("college")
    assert same(data, load_college_msg()) and data.msg.size(1) == DEFAULT_MSG_DIM == 16
    assert same(load_dataset("CollegeMsg", msg_dim=4, seed=2), load_college_msg(4, seed=2))


def test_feature_less_file_gets_seeded_features(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("1 2 0\n2 1 4\n")
    data = load_dataset(str(path))
    assert torch.equal(data.msg, edge_features(2, 16, "random", 0))
    assert torch.equal(load_dataset(str(path), msg_dim=3, seed=5).msg,
                       edge_features(2, 3, "random", 5))
    assert data.num_nodes == 2 and "y" not in data


def test_zero_features_for_data_without_any(tmp_path):
    """features="zeros" (DyGLib's and TGB's featureless datasets): zeros of
    msg_dim for data without features, the same events; files with features
    keep theirs."""
    path = tmp_path / "e.txt"
    path.write_text("1 2 0\n2 1 4\n")
    for spec in ("college", str(path), "synthetic:events=50,nodes=9"):
        seeded, zeros = load_dataset(spec), load_dataset(spec, msg_dim=7, features="zeros")
        assert zeros.msg.shape == (seeded.num_events, 7) and not zeros.msg.any()
        assert all(torch.equal(seeded[k], zeros[k]) for k in ("src", "dst", "t"))
    jodie = tmp_path / "j.csv"
    jodie.write_text(JODIE)
    assert same(load_dataset(str(jodie), features="zeros"), load_dataset(str(jodie)))
    with pytest.raises(DataFormatError) as info:
        load_dataset("college", features="ones")
    assert str(info.value) == "college: features must be 'random' or 'zeros' (got 'ones')"


def test_file_features_kept_or_padded(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text(JODIE)
    data = load_dataset(str(path))
    assert data.msg.shape == (4, 2) and data.y.tolist() == [0, 1, 0, 0]
    padded = load_dataset(str(path), msg_dim=5)
    assert torch.equal(padded.msg[:, :2], data.msg)
    assert torch.count_nonzero(padded.msg[:, 2:]) == 0
    assert same(load_dataset(str(path), msg_dim=2), data)
    with pytest.raises(DataFormatError) as info:
        load_dataset(str(path), msg_dim=1)
    assert str(info.value) == f"{path}: msg_dim=1 is smaller than the 2 edge features of the data"


def test_jodie_dataset_from_a_raw_file_in_place(tmp_path):
    raw = tmp_path / "wikipedia" / "raw" / "wikipedia.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(JODIE)
    data = load_dataset("jodie:Wikipedia", root=str(tmp_path))
    # PyG's numbering, and the same as reading the file as "jodie"
    assert data.src.tolist() == [0, 1, 0, 2] and data.dst.tolist() == [3, 3, 4, 4]
    assert data.t.tolist() == [0, 4, 6, 6]  # relative time (PyG keeps 3, 7, 9, 9)
    assert same(data, load_dataset(str(raw)))
    assert load_dataset("jodie:wikipedia", root=str(tmp_path), msg_dim=3).msg.size(1) == 3
    # without feature columns: seeded features, as for the file
    raw = tmp_path / "lastfm" / "raw" / "lastfm.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("user,item,ts,label\n0,0,1,0\n1,0,2,0\n")
    data = load_dataset("jodie:lastfm", root=str(tmp_path))
    assert same(data, load_dataset(str(raw))) and data.msg.size(1) == 16


class RunsCode:
    """Pickled as a call of exec creating :obj:`marker` (a global PyG's
    loader would retry with a full unpickle)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_jodie_processed_file_that_would_run_code_is_refused(tmp_path):
    raw = tmp_path / "wikipedia" / "raw" / "wikipedia.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(JODIE)
    load_dataset("jodie:wikipedia", root=str(tmp_path))  # PyG writes processed/
    processed = tmp_path / "wikipedia" / "processed" / "data.pt"
    torch.save(RunsCode(tmp_path / "ran"), processed)
    with pytest.raises(DataFormatError) as info:
        load_dataset("jodie:wikipedia", root=str(tmp_path))
    assert str(info.value).startswith(f"{processed}: refused: loading it would run code "
                                      "(builtins.exec)")
    assert not (tmp_path / "ran").exists()


def test_jodie_dataset_errors(tmp_path):
    with pytest.raises(DataFormatError) as info:
        load_dataset("jodie:enron", root=str(tmp_path))
    assert str(info.value) == ("jodie:enron: unknown JODIE dataset 'enron' "
                               "(one of reddit, wikipedia, mooc, lastfm)")
    raw = tmp_path / "mooc" / "raw" / "mooc.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("a,b,c,d\n0,0,5,0\n1,0,4,0\n")
    with pytest.raises(DataFormatError) as info:
        load_dataset("jodie:mooc", root=str(tmp_path))
    assert str(info.value) == (f"{raw}:3: timestamp 4 is before the previous event's 5 "
                               "(events must be sorted by time)")


def test_synthetic_spec():
    data = load_dataset("synthetic:events=2k,nodes=50,seed=3,alpha=0.5,msg_dim=4")
    assert same(data, synthetic_events(2000, 50, alpha=0.5, msg_dim=4, seed=3))
    # keyword arguments are the defaults of the keys left out
    assert same(load_dataset("synthetic:events=100,nodes=9", msg_dim=2, seed=7),
                synthetic_events(100, 9, msg_dim=2, seed=7))
    assert same(load_dataset("synthetic:events=1e2, nodes=9"), synthetic_events(100, 9))


@pytest.mark.parametrize("spec,reason", [
    ("synthetic:events=5", "missing nodes= (synthetic:events=...,nodes=...)"),
    ("synthetic:", "missing events= and nodes= (synthetic:events=...,nodes=...)"),
    ("synthetic:events=1.5,nodes=3", "events='1.5' is not an integer"),
    ("synthetic:events=5,nodes=x", "nodes='x' is not an integer"),
    ("synthetic:events=5,nodes=1", "'nodes' must be an integer >= 2 (got 1)"),
    ("synthetic:events=0,nodes=3", "'events' must be an integer >= 1 (got 0)"),
    ("synthetic:events=5,nodes=3,alpha=-1", "'alpha' must be a finite number >= 0 (got -1.0)"),
    ("synthetic:events=5,nodes=3,alpha=x", "alpha='x' is not a number"),
    ("synthetic:events=5,nodes=3,size=2", "expected key=value with a key among events, nodes, "
     "seed, alpha, msg_dim (got 'size=2')"),
])
def test_synthetic_spec_errors(spec, reason):
    with pytest.raises(DataFormatError) as info:
        load_dataset(spec)
    assert str(info.value) == f"{spec}: {reason}"


def test_argument_errors(tmp_path):
    for spec, kwargs, reason in [
        ("college", {"format": "snap"}, "format= applies to files only"),
        ("synthetic:events=5,nodes=3", {"format": "snap"}, "format= applies to files only"),
        ("college", {"root": str(tmp_path)}, "root= applies to jodie:<name> only"),
    ]:
        with pytest.raises(DataFormatError) as info:
            load_dataset(spec, **kwargs)
        assert str(info.value) == f"{spec}: {reason}"
    with pytest.raises(DataFormatError) as info:
        load_dataset("college", msg_dim=-1)
    assert str(info.value) == "college: msg_dim must be None or an integer >= 0 (got -1)"


def test_jodie_failed_download_leaves_nothing(tmp_path, monkeypatch):
    import urllib.error

    import torch_geometric.datasets.jodie as jodie

    def half_download(url, folder, *args, **kwargs):  # writes part, then fails
        (tmp_path / "reddit" / "raw").mkdir(parents=True, exist_ok=True)
        (tmp_path / "reddit" / "raw" / "reddit.csv").write_text("user,item,ts,lab")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(jodie, "download_url", half_download)
    with pytest.raises(DataFormatError) as info:
        load_dataset("jodie:reddit", root=str(tmp_path))
    raw = tmp_path / "reddit" / "raw"
    assert str(info.value) == ("jodie:reddit: could not download "
                               "http://snap.stanford.edu/jodie/reddit.csv (<urlopen error no "
                               f"network>); put reddit.csv into {raw}")
    assert not (raw / "reddit.csv").exists()
