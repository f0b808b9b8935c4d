"""JODIE, DyRep and APAN trained through the pipeline (fixed schedule),
killed with SIGKILL mid-epoch and resumed: bit-identical losses and final
state (APAN's mailbox and neighbour table included)."""
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("resume_models_worker.py")
pytestmark = pytest.mark.timeout(300)


def worker(out, *extra, kill_at=None):
    cmd = [sys.executable, str(WORKER), str(out), *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        if kill_at is None:
            _, stderr = proc.communicate(timeout=240)
            assert proc.returncode == 0, stderr
            return
        for line in proc.stdout:
            if line.startswith("batch") and int(line.split()[2]) == kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


def same(a, b, where=""):
    if torch.is_tensor(a):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, where


@pytest.mark.parametrize("name", ["jodie", "dyrep", "apan"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, name):
    kill_at = random.Random(name).randrange(5, 21)  # 12 batches per epoch, 2 epochs
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir()
    run.mkdir()
    opts = ["--model", name, "--staleness", "2", "--every", "3"]
    worker(ref, *opts)
    worker(run, *opts, kill_at=kill_at)
    assert (run / "ckpt.pt").exists() and not (run / "result.pt").exists()
    worker(run, *opts, "--resume")
    ra, rb = torch.load(ref / "result.pt"), torch.load(run / "result.pt")
    assert ra["losses"] == rb["losses"]
    same(ra["memory"], rb["memory"], "memory")
    same(ra["params"], rb["params"], "params")
