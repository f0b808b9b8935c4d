"""`pyg-mspipe train --data tgb:<dir>`: TGB's split, negatives and metrics,
the options TGB fixes refused, and bad TGB folders as one line, exit 2."""
import json
import pickle
import shutil
import sys

import pytest

pytest.importorskip("tgb")

from tests.tgb_files import college_events, tgb_split_masks, write_tgb_dataset  # noqa: E402

from .common import run_cli  # noqa: E402
from .test_main import assert_one_line_error  # noqa: E402

SMALL = ["--batch-size", "100", "--memory-dim", "8", "--embedding-dim", "8", "--time-dim",
         "8", "--msg-dim", "4", "--neighbors", "5"]


@pytest.fixture(scope="module")
def tgb_dir(tmp_path_factory):
    src, dst, t = college_events(1500)
    return write_tgb_dataset(tmp_path_factory.mktemp("tgb") / "tgbl_uci", src, dst, t)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_on_tgb_reports_tgbs_metrics(capsys, tmp_path, tgb_dir):
    code, out, err = run_cli(capsys, "train", "--data", f"tgb:{tgb_dir}", *SMALL,
                             "--epochs", "1", "-q", "--json", tmp_path / "run.json")
    assert code == 0, err
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["eval_protocol"] == {"split": "tgb", "negatives": "tgb",
                                        "dataset": "tgbl-uci", "num_negatives": 20,
                                        "metrics": ["mrr", "hits@10"]}
    split = summary["data"]["split"]
    _, _, t = college_events(1500)
    assert (split["num_train"], split["num_val"], split["num_test"]) == tuple(
        int(mask.sum()) for mask in tgb_split_masks(t))  # TGB's split
    epoch = summary["epochs"][0]
    for part in ("val", "test"):
        assert set(epoch[part]) == {"mrr", "hits@10"}
        assert 0 < epoch[part]["mrr"] <= 1 and 0 <= epoch[part]["hits@10"] <= 1
    assert summary["best"]["selected_by"] == "val mrr"
    assert "test mrr" in out and "hits@10" in out
    code, _, err = run_cli(capsys, "train", "--data", f"tgb:{tgb_dir}", *SMALL,
                           "--epochs", "1", "-q", "--model", "jodie", "--metrics",
                           "mrr,hits@1")
    assert code == 0, err


REFUSED = [
    (["--negatives", "random"], "--negatives: tgb:"),
    (["--num-negatives", "5", "--negatives", "random"], "--negatives: tgb:"),
    (["--split", "inductive"], "--split: tgb:"),
    (["--val-ratio", "0.2"], "--val-ratio: tgb:"),
    (["--metrics", "mrr,ap"], "--metrics: TGB's Evaluator gives mrr and hits@k, not ap"),
]


@pytest.mark.parametrize("argv, expected", REFUSED, ids=[" ".join(c[0]) for c in REFUSED])
def test_options_tgb_fixes_are_refused(capsys, tgb_dir, argv, expected):
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{tgb_dir}", *argv),
                          expected)


def _copy(tgb_dir, tmp_path):
    root = tmp_path / "tgbl_uci"
    shutil.copytree(tgb_dir, root)
    return root


def test_bad_tgb_folders_are_one_line_exit_2(capsys, tgb_dir, tmp_path):
    root = _copy(tgb_dir, tmp_path)
    (root / "tgbl-uci_test_ns.pkl").unlink()
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{root}"),
                          f"{root}/tgbl-uci_test_ns.pkl: no such file (TGB's test negatives)")
    shutil.rmtree(root)
    root = _copy(tgb_dir, tmp_path)
    with open(root / "tgbl-uci_val_ns.pkl", "rb") as f:
        table = pickle.load(f)
    table[(5, 7, 0)] = [1, 2]
    with open(root / "tgbl-uci_val_ns.pkl", "wb") as f:
        pickle.dump(table, f)
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{root}"),
                          "negatives for (5, 7, 0), not a validation event")
    edges = root / "tgbl-uci_edgelist.csv"
    edges.write_text(edges.read_text().replace("\n", ",x\n", 3))
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{root}"),
                          f"{edges}:2: column 5 (a feature) is not a number: wrong columns?")
    edges.write_text("user_id,item_id,timestamp,state_label\n0,1,5,0\n1,2,1e30,0\n")
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{root}"),
                          f"{edges}:3: the timestamp is not a number or does not fit in int64")
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{tmp_path}/none"),
                          f"tgb:{tmp_path}/none: no such folder")


def test_without_py_tgb_one_line_exit_2(capsys, monkeypatch, tgb_dir):
    for name in [m for m in sys.modules if m == "tgb" or m.startswith("tgb.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tgb", None)  # as if py-tgb were not installed
    assert_one_line_error(*run_cli(capsys, "train", "--data", f"tgb:{tgb_dir}"),
                          "tgb:<dir> needs py-tgb (pip install 'pyg-mspipe[tgb]')")
