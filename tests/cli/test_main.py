"""Every error path of the command line: one line on stderr, exit code 2,
nothing on stdout."""
import gzip
import os
import subprocess
import sys

import pytest
import torch

from .common import TINY, run_cli


def _malformed(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("1 2 10\n3 4 5\n")
    return path


def _ragged_gz(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("u,i,ts,label\n0,1,1,0\n1,2\n")
    return path


CASES = [
    (["train", "--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (["train", "--epochs", "x"], "'x' is not a valid integer"),
    (["train", "--batch-size", "-1"], "'--batch-size'"),
    (["train", "--lr", "0"], "'--lr'"),
    (["train", "--neighbors", "0"], "'--neighbors'"),
    (["train", "--threads", "0"], "'--threads'"),
    (["train", "--model", "gat"], "'--model'"),
    (["train", "--device", "meta"], "only cpu and cuda devices"),
    (["train", "--device", "nonsense:x"], "is not a torch device"),
    (["train", "--schedule", "sometimes"], "'--schedule'"),
    (["train", "--staleness-bound", "-1"], "'--staleness-bound'"),
    (["train", "--storage", "disk"], "'--storage'"),
    (["train", "--format", "xml"], "'--format'"),
    (["train", "--val-ratio", "1.5"], "'--val-ratio'"),
    (["train", "--val-ratio", "0.6", "--test-ratio", "0.5"], "leave no training events"),
    (["train", "--mitigation"], "No such option '--mitigation'"),
    (["train", "--schedule", "fixed"], "--schedule configures the pipeline"),
    (["train", "-q", "-v"], "--quiet and --verbose exclude each other"),
    (["train", "--resume"], "--resume needs --checkpoint-dir"),
    (["train", "--json", "/nonexistent-dir/x.json"], "--json: no such folder"),
    (["train", "--data", "no-such-dataset"], "no-such-dataset: no such file"),
    (["train", "--data", "synthetic:events=abc,nodes=5"], "synthetic"),
    (["train", "--no-such-option"], "No such option"),
    (["train", "--metrics", "ap,foo"], "unknown metric 'foo'"),
    (["train", "--metrics", "ap,ap"], "names a metric twice"),
    (["train", "--negatives", "everything"], "'--negatives'"),
    (["train", "--num-negatives", "3"], "'num_negatives' > 1 needs a sampler strategy"),
    (["train", "--split", "sideways"], "'--split'"),
    (["trian"], "No such command 'trian'"),
    (["datasets", "extra"], "unexpected extra argument"),
    (["bench", "--rounds", "0"], "'--rounds'"),
    (["bench", "--data", "no-such-dataset"], "no-such-dataset: no such file"),
]
if not torch.cuda.is_available():
    CASES.append((["train", "--device", "cuda"], "CUDA is not available on this machine"))


def assert_one_line_error(code, out, err, expected):
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pyg-mspipe: error: ")
    assert expected in lines[0]


@pytest.mark.parametrize("argv, expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_usage_errors_are_one_line_with_exit_code_2(capsys, argv, expected):
    assert_one_line_error(*run_cli(capsys, *argv), expected)


def test_malformed_data_files_name_the_file_and_line(capsys, tmp_path):
    path = _malformed(tmp_path)
    assert_one_line_error(*run_cli(capsys, "train", "--data", path),
                          f"{path}:2: timestamp 5 is before the previous event's 10")
    path = _ragged_gz(tmp_path)
    assert_one_line_error(*run_cli(capsys, "train", "--data", path), f"{path}:3:")
    path = tmp_path / "huge_time.txt"  # was: a numpy overflow warning, then "empty split"
    path.write_text("1 2 10\n2 3 20\n3 1 1e30\n")
    assert_one_line_error(*run_cli(capsys, "train", "--data", path),
                          f"{path}:3: timestamp '1e30' does not fit in int64")


def test_resume_errors(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "train", "--resume", "--checkpoint-dir", tmp_path),
                          f"--resume: no checkpoint at '{tmp_path / 'checkpoint.pt'}'")
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert_one_line_error(*run_cli(capsys, "train", "--resume", "--checkpoint-dir", tmp_path),
                          "--resume: cannot load")
    ckpt = tmp_path / "run"
    code, _, _ = run_cli(capsys, "train", *TINY, "--epochs", "1", "-q",
                         "--checkpoint-dir", ckpt)
    assert code == 0
    assert_one_line_error(*run_cli(capsys, "train", *TINY, "--epochs", "1", "--resume",
                                   "--checkpoint-dir", ckpt),
                          "already run 1 epoch(s); pass --epochs above 1")
    argv = [a if a != "40" else "50" for a in TINY]  # another batch size
    assert_one_line_error(*run_cli(capsys, "train", *argv, "--epochs", "2", "--resume",
                                   "--checkpoint-dir", ckpt),
                          "written with batch_size=40, this run has batch_size=50")


def test_help_and_version(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "train" in out and "bench" in out and "datasets" in out
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0 and "--staleness-bound" in out and "--checkpoint-dir" in out
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and "pyg-mspipe, version" in out


def test_python_dash_m_entry_point():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "pyg_mspipe", "train", "--epochs", "0"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "pyg-mspipe: error: Invalid value for '--epochs': 0 is not in the range x>=1. "
        "(see 'pyg-mspipe train --help')"]


def test_plots_without_matplotlib_fail_before_training(capsys, monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "matplotlib"
                        else find_spec(name, *args))
    assert_one_line_error(*run_cli(capsys, "train", "--plots", tmp_path / "p"),
                          "--plots needs matplotlib: pip install 'pyg-mspipe[plot]'")
    assert_one_line_error(*run_cli(capsys, "bench", "--timeline", tmp_path / "t.png"),
                          "the timeline (--timeline) needs matplotlib")


def test_console_script_is_installed():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "pyg-mspipe"]
    assert script.value == "pyg_mspipe.cli:main"
    from pyg_mspipe.cli import main

    assert script.load() is main
