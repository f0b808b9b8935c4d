"""``torchrun --nproc_per_node=2 -m pyg_mspipe train --device cpu``: two
ranks train and evaluate (with early stopping and DyGLib's training
negatives), rank 0 alone reports."""
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.distributed.common import ROOT


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="needs torchrun")
def test_torchrun_trains_and_finishes():
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable),
                                                        "torchrun")
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [torchrun, "--nproc_per_node=2", f"--master_port={port}", "-m", "pyg_mspipe",
           "train",
           "--epochs", "2", "--patience", "1", "--train-negatives", "random",
           "--device", "cpu", "--data", "synthetic:events=1200,nodes=60",
           "--batch-size", "100", "--memory-dim", "16", "--embedding-dim", "16",
           "--time-dim", "16", "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("best val epoch ") == 1, out.stdout  # rank 0 only
    assert out.stdout.count("early stopping (patience 1): ") == 1, out.stdout
