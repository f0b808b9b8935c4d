"""Event files of every format, from small fixture files: numbering, time,
labels and features against hand-computed values; gzip and detection."""
import gzip

import numpy as np
import pytest
import torch

from pyg_mspipe.datasets import FORMATS, detect_format, read_events


def write(path, text, gz=False):
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


SNAP = "# a SNAP comment\n10 20 100\n\n20 30 100\n30 10 160\n"
JODIE = ("user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n"
         "0,0,5.0,0,0.1,0.2\n1,0,7.0,1,0.3,0.4\n0,1,9.0,0,0.5,0.6\n")
ML = ",u,i,ts,label,idx\n0,1,3,10.0,0.0,1\n1,2,3,12.0,1.0,2\n2,1,4,15.0,0.0,3\n"
UITS = "u,i,ts,label\n0,2,100,0\n1,2,105,1\n"


def test_formats_are_described():
    assert set(FORMATS) == {"snap", "jodie", "ml", "uits"}
    assert all(isinstance(text, str) and "\n" not in text for text in FORMATS.values())


@pytest.mark.parametrize("gz", [False, True])
def test_snap(tmp_path, gz):
    # ids 10, 20, 30 -> 0, 1, 2; time from 0; comments and blank lines skipped
    path = write(tmp_path / "edges.txt", SNAP, gz)
    events = read_events(path)
    assert events.src.tolist() == [0, 1, 2] and events.dst.tolist() == [1, 2, 0]
    assert events.t.tolist() == [0, 0, 60]
    assert events.y is None and events.msg is None
    assert events.src.dtype == events.t.dtype == torch.long


def test_snap_weight_is_a_feature(tmp_path):
    path = write(tmp_path / "w.txt", "5 7 3 2.5\n7 5 4 0.5\n")
    events = read_events(path, "snap")
    assert events.src.tolist() == [0, 1] and events.t.tolist() == [0, 1]
    assert events.msg.dtype == torch.float32
    assert events.msg.tolist() == [[2.5], [0.5]]


@pytest.mark.parametrize("gz", [False, True])
def test_jodie_items_after_users(tmp_path, gz):
    path = write(tmp_path / "wikipedia.csv", JODIE, gz)
    events = read_events(path)
    assert events.src.tolist() == [0, 1, 0]
    assert events.dst.tolist() == [2, 2, 3]  # items 0, 1 after the 2 users
    assert events.t.tolist() == [0, 2, 4] and events.y.tolist() == [0, 1, 0]
    assert torch.equal(events.msg, torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]))


def test_jodie_sparse_ids_are_compacted(tmp_path):
    path = write(tmp_path / "j.csv", "a,b,c,d\n7,5,0,0\n3,5,1,0\n3,9,1,0\n")
    events = read_events(path, "jodie")
    assert events.src.tolist() == [1, 0, 0] and events.dst.tolist() == [2, 2, 3]
    assert events.msg is None  # no feature columns


@pytest.mark.parametrize("gz", [False, True])
def test_ml_with_dyglib_features(tmp_path, gz):
    path = write(tmp_path / ("ml_toy.csv.gz" if gz else "ml_toy.csv"), ML, gz)
    features = np.arange(8, dtype=np.float64).reshape(4, 2)  # row 0: padding
    np.save(tmp_path / "ml_toy.npy", features)
    events = read_events(path)
    assert events.src.tolist() == [0, 1, 0] and events.dst.tolist() == [2, 2, 3]
    assert events.t.tolist() == [0, 2, 5] and events.y.tolist() == [0, 1, 0]
    assert events.msg.dtype == torch.float32
    assert events.msg.tolist() == features[1:].tolist()


def test_ml_without_npy(tmp_path):
    events = read_events(write(tmp_path / "ml_toy.csv", ML))
    assert events.msg is None and events.src.tolist() == [0, 1, 0]


@pytest.mark.parametrize("gz", [False, True])
def test_uits(tmp_path, gz):
    events = read_events(write(tmp_path / "x.csv.gz", UITS, gz))
    assert events.src.tolist() == [0, 1] and events.dst.tolist() == [2, 2]
    assert events.t.tolist() == [0, 5] and events.y.tolist() == [0, 1]
    no_label = read_events(write(tmp_path / "y.csv", "u,i,ts\n4,8,3\n"))
    assert no_label.y is None and no_label.src.tolist() == [0] and no_label.dst.tolist() == [1]


def test_fractional_time_truncated_as_pyg(tmp_path):
    path = write(tmp_path / "j.csv", "a,b,c,d\n0,0,1.9,0\n0,0,2.2,0\n0,0,4.7,0\n")
    assert read_events(path).t.tolist() == [0, 1, 3]  # 1, 2, 4 less 1


@pytest.mark.parametrize("text,name,expected", [
    (SNAP, "a.txt", "snap"),
    ("1\t2\t3\n", "a.dat", "snap"),
    (JODIE, "wiki.csv", "jodie"),
    (ML, "edges.csv", "ml"),
    (UITS, "ml_named.csv", "uits"),  # the contents decide, not the name
    (UITS, "wikipedia_edges.csv", "uits"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_detection(tmp_path, text, name, expected, gz):
    name = name + ".gz" if gz else name
    assert detect_format(write(tmp_path / name, text, gz)) == expected


def test_bundled_college_equals_the_shared_file():
    from pyg_mspipe.datasets import load_college_msg

    from ..shared_data import find_data_file

    path = find_data_file("CollegeMsg.txt.gz")
    if path is None:
        pytest.skip("shared/data not present")
    events, data = read_events(path), load_college_msg()
    assert torch.equal(events.src, data.src) and torch.equal(events.t, data.t)
    assert torch.equal(events.dst, data.dst)
