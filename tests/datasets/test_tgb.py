"""TGB link datasets read offline (tgb:<dir>): py-tgb's own parse, split and
negatives, and one clear error for each kind of bad folder."""
import pickle
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("tgb")

from tgb.linkproppred.negative_sampler import NegativeEdgeSampler  # noqa: E402
from tgb.utils.pre_process import load_edgelist_wiki  # noqa: E402

from pyg_mspipe.datasets import DataFormatError, load_dataset, load_tgb  # noqa: E402
from tests.tgb_files import college_events, tgb_split_masks, write_tgb_dataset  # noqa: E402

NAME = "tgbl-uci"


@pytest.fixture(scope="module")
def tgb_dir(tmp_path_factory):
    src, dst, t = college_events(3000)
    features = np.random.default_rng(0).normal(size=(src.size, 3))
    return write_tgb_dataset(tmp_path_factory.mktemp("tgb") / "tgbl_uci", src, dst, t,
                             features=features)


def test_events_split_and_negatives_are_tgbs(tgb_dir):
    dataset = load_tgb(tgb_dir)
    assert dataset.name == NAME
    df, feat, _ = load_edgelist_wiki(str(tgb_dir / f"{NAME}_edgelist.csv"))
    data = dataset.data
    assert torch.equal(data.src, torch.from_numpy(np.array(df["u"])))
    assert torch.equal(data.dst, torch.from_numpy(np.array(df["i"])))
    assert torch.equal(data.t, torch.from_numpy(np.asarray(df["ts"]).astype(int)))
    assert torch.equal(data.msg, torch.from_numpy(feat).float())
    masks = tgb_split_masks(data.t.numpy())
    assert (dataset.num_train, dataset.num_val, dataset.num_test) == tuple(
        int(m.sum()) for m in masks)
    assert masks[0][:dataset.num_train].all() and masks[2][-dataset.num_test:].all()
    sampler = NegativeEdgeSampler(NAME)
    for part, mask in (("val", masks[1]), ("test", masks[2])):
        sampler.load_eval_set(str(tgb_dir / f"{NAME}_{part}_ns.pkl"), part)
        rows = torch.from_numpy(mask)
        expected = sampler.query_batch(data.src[rows], data.dst[rows], data.t[rows],
                                       split_mode=part)
        got = dataset.negatives(part)
        assert got.size(0) == len(expected)
        for row, negatives in zip(got, expected):
            assert row[row >= 0].tolist() == negatives
    assert torch.equal(load_dataset(f"tgb:{tgb_dir}").src, data.src)


def test_ragged_negatives_are_padded(tmp_path):
    # tgbl-wiki's layout (version 2 names), every destination a negative:
    # rows shorter where a source has several positives at one time.
    src = np.array([0, 1, 0, 0, 2, 1, 0, 2, 1, 2])
    dst = np.array([0, 1, 2, 1, 0, 2, 1, 1, 0, 2])
    t = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 9])
    root = write_tgb_dataset(tmp_path / "tgbl_wiki", np.r_[src, src], np.r_[dst, dst],
                             np.r_[t, t + 10], name="tgbl-wiki", num_negatives=100,
                             features=np.ones((20, 2)))
    assert {p.name for p in root.iterdir()} == {
        "tgbl-wiki_edgelist_v2.csv", "tgbl-wiki_val_ns_v2.pkl", "tgbl-wiki_test_ns_v2.pkl"}
    dataset = load_tgb(root)
    with open(root / "tgbl-wiki_test_ns_v2.pkl", "rb") as f:
        table = pickle.load(f)
    rows = slice(dataset.num_train + dataset.num_val, None)
    keys = zip(*(x[rows].tolist() for x in (dataset.data.src, dataset.data.dst,
                                           dataset.data.t)))
    for row, key in zip(dataset.test_negatives, keys):
        assert row[row >= 0].tolist() == [int(v) for v in table[key]]
        assert (row[(row >= 0).sum():] == -1).all()


def _damage(tgb_dir, tmp_path, name):
    root = tmp_path / "tgbl_uci"
    shutil.copytree(tgb_dir, root)
    edges = root / f"{NAME}_edgelist.csv"
    val = root / f"{NAME}_val_ns.pkl"
    if name == "missing_negatives":
        val.unlink()
    elif name in ("extra_negatives", "missing_event", "swapped"):
        with open(val, "rb") as f:
            table = pickle.load(f)
        if name == "extra_negatives":
            table[(0, 1, 99)] = np.arange(3)
        elif name == "missing_event":
            del table[next(iter(table))]
        else:
            with open(root / f"{NAME}_test_ns.pkl", "rb") as f:
                table = pickle.load(f)
        with open(val, "wb") as f:
            pickle.dump(table, f)
    elif name == "not_a_pickle":
        val.write_text("negatives")
    elif name == "not_a_dict":
        with open(val, "wb") as f:
            pickle.dump([1, 2, 3], f)
    elif name == "text_ids":
        lines = edges.read_text().splitlines()
        lines[5] = "alice," + lines[5].split(",", 1)[1]
        edges.write_text("\n".join(lines) + "\n")
    elif name in ("text_items", "text_feature"):
        lines = edges.read_text().splitlines()
        fields = lines[5].split(",")
        fields[1 if name == "text_items" else 5] = "x"
        lines[5] = ",".join(fields)
        edges.write_text("\n".join(lines) + "\n")
    elif name == "two_columns":
        edges.write_text("a,b\n" + "".join(f"{k},{k}\n" for k in range(50)))
    elif name == "huge_time":
        lines = edges.read_text().splitlines()
        fields = lines[7].split(",")
        fields[2] = "1e30"
        lines[7] = ",".join(fields)
        edges.write_text("\n".join(lines) + "\n")
    elif name == "no_edgelist":
        edges.unlink()
    elif name == "unknown_name":
        edges.rename(root / "tgbl-foo_edgelist.csv")
    elif name == "old_version":
        for path in root.iterdir():
            path.rename(root / path.name.replace(NAME, "tgbl-wiki"))
    return root


BAD = [  # damage, expected message after '<folder>/'
    ("missing_negatives", f"{NAME}_val_ns.pkl: no such file (TGB's validation negatives)"),
    ("extra_negatives", f"{NAME}_val_ns.pkl: negatives for (0, 1, 99), not a validation "
     "event (and 0 more): not the negatives of this edge list's split"),
    ("missing_event", f"{NAME}_val_ns.pkl: no negatives for validation event "),
    ("swapped", f"{NAME}_val_ns.pkl: no negatives for validation event "),
    ("not_a_pickle", f"{NAME}_val_ns.pkl: cannot read TGB's validation negatives "
     "(UnpicklingError: "),
    ("not_a_dict", f"{NAME}_val_ns.pkl: expected TGB's dict {{(src, dst, t): negative "
     "destinations}, got list"),
    ("text_ids", f"{NAME}_edgelist.csv:6: column 1 (user_id) is not an integer: wrong "
     "columns? (expected 'user_id,item_id,timestamp,state_label,features...' after a "
     "header line)"),
    ("text_items", f"{NAME}_edgelist.csv:6: column 2 (item_id) is not an integer: wrong "
     "columns? "),
    ("text_feature", f"{NAME}_edgelist.csv:6: column 6 (a feature) is not a number: wrong "
     "columns? "),
    ("two_columns", f"{NAME}_edgelist.csv: expected the columns 'user_id,item_id,"
     "timestamp,state_label,features...' after a header line, got 2"),
    ("huge_time", f"{NAME}_edgelist.csv:8: the timestamp is not a number or does not fit "
     "in int64"),
    ("no_edgelist", "no TGB edge list '<name>_edgelist[_v<N>].csv' here"),
    ("unknown_name", "tgbl-foo_edgelist.csv: TGB dataset 'tgbl-foo' is not supported"),
    ("old_version", "tgbl-wiki_edgelist.csv: py-tgb reads version 2 of tgbl-wiki, "
     "'tgbl-wiki_edgelist_v2.csv' (download it again with py-tgb)"),
]


@pytest.mark.parametrize("damage, expected", BAD, ids=[case[0] for case in BAD])
def test_bad_tgb_folder(tgb_dir, tmp_path, damage, expected):
    root = _damage(tgb_dir, tmp_path, damage)
    with pytest.raises(DataFormatError) as info:
        load_tgb(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{root}" + (": " if expected.startswith("no TGB") else "/"))
    assert expected in message, message


def test_not_a_folder(tmp_path):
    with pytest.raises(DataFormatError, match=r"^tgb:/nowhere: no such folder"):
        load_dataset("tgb:/nowhere")
    with pytest.raises(DataFormatError, match=r"format= applies to files only"):
        load_dataset(f"tgb:{tmp_path}", format="snap")


def _other_layout(name, rng):
    """A small edge list in `name`'s layout: string node ids, sorted times."""
    nodes = [f"0x{k:04x}" for k in range(12)]
    lines = {"tgbl-coin": "time,src,dst,weight", "tgbl-review": "time,src,dst,weight",
             "tgbl-comment": "ts,src,dst,num_words,score",
             "tgbl-flight": "day,src,dst,callsign,typecode"}[name]
    rows = [lines]
    for k in range(80):
        s, d = rng.choice(12, 2, replace=False)
        t = 1_600_000_000 + 3600 * (k // 2)
        tail = {"tgbl-coin": f"{rng.uniform(0.5, 900):.2f}",
                "tgbl-review": f"{rng.integers(1, 6)}.0",
                "tgbl-comment": f"{rng.integers(1, 400)},{rng.integers(-5, 50)}",
                "tgbl-flight": f"AB{rng.integers(100, 999)},A3{rng.integers(10, 99)}"}[name]
        rows.append(f"{t},{nodes[s]},{nodes[d]},{tail}")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("name", ["tgbl-coin", "tgbl-review", "tgbl-comment", "tgbl-flight"])
def test_other_tgbl_layouts(tmp_path, name):
    from tgb.utils import pre_process

    from tests.tgb_files import PARSERS, write_tgb_text

    root = write_tgb_text(tmp_path / name.replace("-", "_"), name,
                          _other_layout(name, np.random.default_rng(0)), num_negatives=5)
    dataset = load_tgb(root)
    edges = next(root.glob("*_edgelist*.csv"))
    df, feat, _ = getattr(pre_process, PARSERS[name])(str(edges))
    w = np.asarray(df["w"]).reshape(-1, 1)
    expected = {"tgbl-coin": w, "tgbl-review": w, "tgbl-comment": np.concatenate([feat, w], 1),
                "tgbl-flight": feat}[name]  # LinkPropPredDataset.pre_process's edge features
    data = dataset.data
    assert torch.equal(data.src, torch.from_numpy(np.asarray(df["u"]).astype(np.int64)))
    assert torch.equal(data.dst, torch.from_numpy(np.asarray(df["i"]).astype(np.int64)))
    assert torch.equal(data.t, torch.from_numpy(np.asarray(df["ts"]).astype(int)))
    assert torch.equal(data.msg, torch.from_numpy(expected).float())
    sampler = NegativeEdgeSampler(name)
    masks = tgb_split_masks(data.t.numpy())
    suffix = edges.name.split("_edgelist")[1][:-4]
    sampler.load_eval_set(str(root / f"{name}_test_ns{suffix}.pkl"), "test")
    rows = torch.from_numpy(masks[2])
    expected = sampler.query_batch(data.src[rows], data.dst[rows], data.t[rows],
                                   split_mode="test")
    assert [row[row >= 0].tolist() for row in dataset.test_negatives] == expected
    edges.write_text(edges.read_text().splitlines()[0] + "\n1,a\n")
    with pytest.raises(DataFormatError, match=rf"^{edges}: not a TGB {name} edge list \("):
        load_tgb(root)
