"""`pyg-mspipe train --resume` after SIGKILL mid-epoch continues to the same
final metrics as an uninterrupted run (sequential, and pipelined with the
fixed schedule)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from ..test_checkpoint import hostile_checkpoint
from .common import TINY, run_cli

pytestmark = pytest.mark.timeout(240)

EPOCHS = ["--epochs", "2"]


def metrics(path):
    # (a resumed epoch's pipeline statistics cover the iterations after the resumption)
    return [(e["epoch"], e["loss"], e["val"], e["test"])
            for e in json.loads(path.read_text())["epochs"]]


def run_and_kill(argv, kill_after: str):
    """Runs `python -m pyg_mspipe train ARGV -v` (one thread) and SIGKILLs it
    as soon as its stderr says `kill_after`."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "pyg_mspipe", "train", *argv, "-v"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        for line in proc.stderr:
            if line.strip() == kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        assert proc.wait(timeout=120) == -signal.SIGKILL, "the run ended before the kill"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()


@pytest.mark.parametrize("pipeline, kill_at", [([], (2, 3)),
                                               (["--staleness-bound", "2", "--schedule",
                                                 "fixed"], (1, 4))],
                         ids=["sequential", "pipelined-s2-fixed"])
def test_sigkill_mid_epoch_then_resume_gives_the_same_final_metrics(capsys, tmp_path, pipeline,
                                                                     kill_at):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1)
    try:
        code, _, err = run_cli(capsys, "train", *TINY, *EPOCHS, *pipeline, "-q", "--json",
                               tmp_path / "ref.json")
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    ckpt = tmp_path / "ckpt"
    argv = [*TINY, *EPOCHS, *pipeline, "--checkpoint-dir", str(ckpt), "--checkpoint-every",
            "1"]
    epoch, batch = kill_at
    run_and_kill(argv, f"checkpoint: epoch {epoch} batch {batch} -> {ckpt / 'checkpoint.pt'}")
    state = torch.load(ckpt / "checkpoint.pt", weights_only=False)["extra"]["state"]
    assert state["epoch"] == epoch - 1 and state["batches"] >= batch  # killed mid-epoch
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pyg_mspipe", "train", *argv, "--resume",
                           "-q", "--json", str(tmp_path / "run.json")], capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(resumed)" in proc.stdout
    assert metrics(tmp_path / "run.json") == metrics(tmp_path / "ref.json")


def test_resume_refuses_a_checkpoint_that_would_run_code(capsys, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    hostile_checkpoint(ckpt / "checkpoint.pt", tmp_path / "ran")
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--checkpoint-dir", ckpt,
                             "--resume", "-q")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("pyg-mspipe: error: --resume: cannot load")
    assert "would run code (posix.system)" in err and "nothing was restored" in err
    assert not (tmp_path / "ran").exists()
