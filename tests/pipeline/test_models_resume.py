"""JODIE, DyRep and APAN trained through the pipeline (fixed schedule),
killed with SIGKILL mid-epoch and resumed: bit-identical losses and final
state (APAN's mailbox and neighbour table included)."""
import random

import pytest
import torch

from ..test_checkpoint import worker

pytestmark = pytest.mark.timeout(300)


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
    opts = ["--model", name, "--staleness", "2", "--every", "3", "--prefetch", "2",
            "--events", "1200"]
    worker(ref, *opts)
    worker(run, *opts, kill_at=kill_at)
    assert (run / "ckpt.pt").exists() and not (run / "result.pt").exists()
    worker(run, *opts, "--resume")
    ra, rb = torch.load(ref / "result.pt"), torch.load(run / "result.pt")
    assert ra["losses"] == rb["losses"]
    same(ra["memory"], rb["memory"], "memory")
    same(ra["params"], rb["params"], "params")
