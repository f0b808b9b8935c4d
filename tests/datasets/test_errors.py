"""Malformed event files: each raises DataFormatError with one line naming
the file and the line at fault (the exact message is asserted)."""
import gzip
import pickle

import numpy as np
import pytest

from pyg_mspipe.datasets import DataFormatError, load_dataset, read_events

SORTED = "(events must be sorted by time)"
CASES = [  # name, text, format, expected message after '<path>'
    ("unsorted.txt", "1 2 10\n2 3 20\n3 1 15\n", None,
     f":3: timestamp 15 is before the previous event's 20 {SORTED}"),
    ("comments.txt", "# c\n\n1 2 10\n2 3 5\n", None,  # comment and blank lines counted
     f":4: timestamp 5 is before the previous event's 10 {SORTED}"),
    ("unsorted.csv", "u,i,ts\n0,1,5.0\n0,1,4.5\n", None,
     f":3: timestamp 4.5 is before the previous event's 5.0 {SORTED}"),
    ("negative.csv", "u,i,ts\n0,1,0\n-1,2,1\n", None, ":3: u id '-1' is negative"),
    ("negative.txt", "1 -2 0\n", None, ":1: dst id '-2' is negative"),
    ("nonint.csv", "h,h,h,h\n0,1.5,0,0\n", None, ":2: item id '1.5' is not an integer"),
    ("nonint_ml.csv", ",u,i,ts,label,idx\n0,1,2,0,0,1.5\n", None,
     ":2: idx '1.5' is not an integer"),
    ("ragged.csv", "u,i,ts,label\n0,1,0,0\n1,2,3\n", None,
     ":3: expected 4 fields (as on line 2), got 3"),
    ("ragged.txt", "1 2 3\n\n2 3 4 5\n", None, ":3: expected 3 fields (as on line 1), got 4"),
    ("spaces.csv", "u,i,ts\n0,1,0\n   \n", None,
     ":3: expected the columns 'u,i,ts[,label]', got 1 field"),
    ("narrow.txt", "1 2\n1 2 3\n", None,  # the narrow first line, not the next one
     ":1: expected the columns 'src dst t [weight]', got 2 fields"),
    ("narrow_later.txt", "1 2 3\n\n1 2\n", None,
     ":3: expected the columns 'src dst t [weight]', got 2 fields"),
    ("text.txt", "1 2 10\n2 x 20\n", None, ":2: field 2 ('x') is not a number"),
    ("trailing.csv", "u,i,ts\n0,1,0,\n", None, ":2: field 4 ('') is not a number"),
    ("nan.csv", "u,i,ts\n0,1,nan\n", None, ":2: timestamp 'nan' is not a number"),
    ("label.csv", "u,i,ts,label\n0,1,0,0.5\n", None, ":2: label '0.5' is not an integer"),
    ("int64.txt", "1 2 10\n2 3 1e30\n", None, ":2: timestamp '1e30' does not fit in int64"),
    ("int64.csv", "u,i,ts\n0,1,-9.3e18\n", None,
     ":2: timestamp '-9.3e18' does not fit in int64"),
    ("int64_span.txt", "1 2 -9000000000000000000\n2 3 0\n2 3 9000000000000000000\n", None,
     ":3: timestamp '9000000000000000000' is 2**63 or more after the first event's "
     "'-9000000000000000000' (times from the first event must fit in int64)"),
    ("five.txt", "1 2 3 4 5\n", None,
     ":1: expected the columns 'src dst t [weight]', got 5 fields"),
    ("unnamed.csv", "u,i,ts,label\n0,1,0\n", None,
     ":2: expected 4 fields as the header names, got 3"),
    ("short.csv", "a,b,c\n0,1,2\n", "jodie",
     ":2: expected the columns 'user,item,timestamp,state_label,features...', got 3 fields"),
    ("header.csv", "a,b,c\n1,2,3\n", "uits",
     ":1: expected a header 'u,i,ts' or 'u,i,ts,label' (got 'a,b,c')"),
    ("header_ml.csv", "u,i,ts,label,idx,x\n0,1,2,0,0,1\n", "ml",
     ":1: expected the header ',u,i,ts,label,idx' (got 'u,i,ts,label,idx,x')"),
    ("noheader.csv", "0,1,2,0\n", "jodie",
     ":1: expected a header line 'user,item,timestamp,state_label,...' (got a data line)"),
    ("first.txt", "1 2 10\n2 3 5\n-1 2 20\n", None,  # the earliest line at fault wins
     f":2: timestamp 5 is before the previous event's 10 {SORTED}"),
    ("value_first.txt", "1 -2 10\n1 2 x\n", None,  # a value fault before a parse fault
     ":1: dst id '-2' is negative"),
    ("header_first.csv", "a,b,c\n1,2\n", "uits",  # the header before a narrow row
     ":1: expected a header 'u,i,ts' or 'u,i,ts,label' (got 'a,b,c')"),
    ("header_before_ragged.csv", "a,b\n1,2,3\n1,2\n", "uits",
     ":1: expected a header 'u,i,ts' or 'u,i,ts,label' (got 'a,b')"),
    ("empty.txt", "", None, ": empty file"),
    ("empty.csv", "", "uits", ": empty file"),
    ("blank.txt", "  \n\n", "snap", ": empty file"),
    ("header_only.csv", "u,i,ts,label\n", None, ": no events after the header"),
    ("bare.csv", "0,1,2\n", None, ": a CSV without a header line: cannot tell its format, "
     "pass format= (one of snap, jodie, ml, uits)"),
    ("words.txt", "hello world\n", None, ": cannot tell the format from the first line, "
     "pass format= (one of snap, jodie, ml, uits)"),
]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name,text,fmt,expected", CASES, ids=[case[0] for case in CASES])
def test_malformed_file(tmp_path, name, text, fmt, expected, gz):
    path = tmp_path / name
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    with pytest.raises(DataFormatError) as info:
        read_events(path, fmt)
    assert str(info.value) == f"{path}{expected}"
    assert "\n" not in str(info.value)
    line = expected.split(":")[1]
    assert info.value.line == (int(line) if line.isdigit() else None)
    assert info.value.path == str(path)
    # the same through load_dataset, which takes the path as a string
    with pytest.raises(DataFormatError, match="^" + str(path).replace("\\", "\\\\")):
        load_dataset(str(path), format=fmt)


def test_ml_idx_without_feature_row(tmp_path):
    path = tmp_path / "ml_x.csv"
    path.write_text(",u,i,ts,label,idx\n0,1,2,0,0,1\n1,1,2,1,0,5\n")
    np.save(tmp_path / "ml_x.npy", np.zeros((3, 2)))
    with pytest.raises(DataFormatError) as info:
        read_events(path)
    assert str(info.value) == f"{path}:3: idx 5 has no row in ml_x.npy (3 rows)"
    np.save(tmp_path / "ml_x.npy", np.zeros(3))
    with pytest.raises(DataFormatError) as info:
        read_events(path)
    assert str(info.value) == (f"{tmp_path / 'ml_x.npy'}: expected a 2-D array of edge "
                               "features, got shape (3,)")


def test_unreadable_files(tmp_path):
    damaged = tmp_path / "damaged.txt"
    damaged.write_bytes(b"\x1f\x8bnot really gzip")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x01 2 3\n")
    stream = gzip.compress(b"1 2 3\n" * 1000)
    corrupt = tmp_path / "corrupt.gz"  # a good header, then a damaged deflate stream
    corrupt.write_bytes(stream[:20] + bytes(b ^ 0x55 for b in stream[20:60]) + stream[60:])
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(stream[:len(stream) // 2])
    for fmt in (None, "snap"):
        for path in (damaged, corrupt, truncated):
            with pytest.raises(DataFormatError) as info:
                read_events(path, fmt)
            assert str(info.value).startswith(f"{path}: damaged gzip file (")
        with pytest.raises(DataFormatError) as info:
            read_events(binary, fmt)
        assert str(info.value) == f"{binary}: not a UTF-8 text file"


def test_missing_file_and_unknown_format(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(DataFormatError) as info:
        load_dataset(str(missing))
    assert str(info.value) == (f"{missing}: no such file (nor a bundled name: college, "
                               "synthetic:..., jodie:<name>, tgb:<dir>)")
    assert info.value.line is None and info.value.reason.startswith("no such file")
    with pytest.raises(DataFormatError) as info:
        read_events(missing, "snap")
    assert str(info.value) == f"{missing}: no such file"
    with pytest.raises(DataFormatError) as info:
        read_events(tmp_path, "snap")
    assert str(info.value) == f"{tmp_path}: not a file"
    (tmp_path / "x.csv").write_text("u,i,ts\n0,1,2\n")
    for call in (lambda: load_dataset(str(tmp_path / "x.csv"), format="csv"),
                 lambda: read_events(tmp_path / "x.csv", "csv")):
        with pytest.raises(DataFormatError) as info:
            call()
        assert str(info.value) == (f"{tmp_path / 'x.csv'}: unknown format 'csv' "
                                   "(one of snap, jodie, ml, uits)")


def test_error_is_a_value_error_and_pickles():
    error = DataFormatError("f.csv", 3, "bad\nthing")
    assert isinstance(error, ValueError)
    assert str(error) == "f.csv:3: bad thing" and error.reason == "bad thing"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.reason, str(copy)) == ("f.csv", 3, "bad thing", str(error))
    assert str(DataFormatError("f.csv", reason="empty file")) == "f.csv: empty file"
