"""Checkpoint and resume: a run killed with SIGKILL mid-epoch and resumed
gives bit-identical losses and final state to an uninterrupted run."""
import os
import pickle
import random
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyg_mspipe import (
    IdentityMessage,
    LastAggregator,
    LastNeighborLoader,
    TemporalDataLoader,
    TGNMemory,
    load_checkpoint,
    save_checkpoint,
)

from .helpers import random_stream

WORKER = Path(__file__).with_name("resume_worker.py")
pytestmark = pytest.mark.timeout(300)


def worker(out, *extra, kill_at=None):
    """Runs resume_worker.py to its end, or SIGKILLs it once it printed
    batch :obj:`kill_at`; never leaves the process behind."""
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


def same_result(a, b):
    ra, rb = torch.load(a / "result.pt"), torch.load(b / "result.pt")
    assert ra["losses"] == rb["losses"]
    for part in ("memory", "neighbors", "params"):
        for key, value in ra[part].items():
            other = rb[part][key]
            if torch.is_tensor(value):
                assert torch.equal(value, other), (part, key)
            elif isinstance(value, dict):
                for k, v in value.items():
                    assert torch.equal(v, other[k]) if torch.is_tensor(v) else v == other[k]
            else:
                assert value == other, (part, key)


@pytest.mark.parametrize("prefetch, staleness", [(0, None), (2, None), (2, 2), (2, 4)])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, prefetch, staleness):
    """Also through the pipeline (s > 0, fixed schedule): the checkpoint holds
    the memory after every handed write-back and the fetches already taken
    for the next s iterations."""
    # 3000 events, 100 per batch: 30 batches per epoch, 2 epochs.
    kill_at = random.Random(prefetch + 10 * (staleness or 0)).randrange(5, 55)
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir()
    run.mkdir()
    opts = ["--prefetch", str(prefetch), "--every", "3"]
    if staleness is not None:
        opts += ["--staleness", str(staleness)]
    worker(ref, *opts)
    worker(run, *opts, kill_at=kill_at)
    assert (run / "ckpt.pt").exists() and not (run / "result.pt").exists()
    worker(run, *opts, "--resume")
    same_result(ref, run)


def test_checkpoint_round_trip_in_process(tmp_path):
    torch.manual_seed(0)
    mem = TGNMemory(30, 4, 8, 8, IdentityMessage(4, 8, 8), LastAggregator())
    nl = LastNeighborLoader(30, 5)
    src, dst, t, msg = random_stream(30, 80, 4)
    mem.update_state(src[:40], dst[:40], t[:40], msg[:40])
    nl.insert(src[:40], dst[:40])
    save_checkpoint(tmp_path / "c.pt", extra={"note": 1}, memory=mem, neighbor_loader=nl)
    before = torch.rand(3)
    torch.manual_seed(0)
    mem2 = TGNMemory(30, 4, 8, 8, IdentityMessage(4, 8, 8), LastAggregator())
    nl2 = LastNeighborLoader(30, 5)
    extra = load_checkpoint(tmp_path / "c.pt", memory=mem2, neighbor_loader=nl2)
    assert extra == {"note": 1}
    assert torch.equal(torch.rand(3), before)  # RNG restored
    assert torch.equal(mem2.state.last_t, mem.state.last_t)
    with pytest.raises(ValueError, match="back in time"):  # validation state restored
        mem2.update_state(src[:5], dst[:5], t[:5], msg[:5])
    for m in (mem, mem2):
        m.update_state(src[40:], dst[40:], t[40:], msg[40:])
    assert torch.equal(mem.memory, mem2.memory)
    for a, b in zip(nl(torch.arange(30)), nl2(torch.arange(30))):
        assert torch.equal(a, b)


def test_load_checkpoint_errors(tmp_path):
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a pyg-mspipe checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    nl = LastNeighborLoader(10, 2)
    save_checkpoint(tmp_path / "c.pt", neighbor_loader=nl)
    with pytest.raises(KeyError, match="memory"):
        load_checkpoint(tmp_path / "c.pt", memory=nl)
    with pytest.raises(TypeError, match="state_dict"):
        save_checkpoint(tmp_path / "d.pt", thing=object())


class RunsCode:
    """Pickled as a call of os.system creating :obj:`marker`: what a hostile
    checkpoint file holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def hostile_checkpoint(path, marker, legacy=False):
    """A file shaped like a checkpoint whose :obj:`extra` runs a command."""
    torch.save({"format": "pyg-mspipe-checkpoint/1", "rng": {}, "extra": RunsCode(marker),
                "objects": {}}, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, legacy):
    marker = tmp_path / "ran"
    with open(tmp_path / "probe.pt", "wb") as f:  # the file runs code when unpickled
        pickle.dump(RunsCode(marker), f)
    pickle.loads((tmp_path / "probe.pt").read_bytes())
    assert marker.exists()
    marker.unlink()

    hostile_checkpoint(tmp_path / "c.pt", marker, legacy)
    nl = LastNeighborLoader(10, 2)
    nl.insert(torch.tensor([1, 2]), torch.tensor([3, 4]))
    before = nl.state_dict()
    rng = torch.get_rng_state()
    with pytest.raises(pickle.UnpicklingError, match="refused.*system.*nothing was restored"):
        load_checkpoint(tmp_path / "c.pt", neighbor_loader=nl)
    assert not marker.exists()
    assert torch.equal(torch.get_rng_state(), rng)
    after = nl.state_dict()
    assert all(torch.equal(after[k], v) if torch.is_tensor(v) else after[k] == v
               for k, v in before.items())


def test_save_refuses_what_load_would_refuse(tmp_path):
    nl = LastNeighborLoader(10, 2)
    save_checkpoint(tmp_path / "c.pt", extra={"epoch": 1}, neighbor_loader=nl)
    with pytest.raises(TypeError, match="data only.*system"):
        save_checkpoint(tmp_path / "c.pt", extra=RunsCode(tmp_path / "ran"), neighbor_loader=nl)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left
    assert load_checkpoint(tmp_path / "c.pt", neighbor_loader=nl) == {"epoch": 1}
    assert not (tmp_path / "ran").exists()


def test_loader_position_resumes_the_same_batches():
    src, dst, t, msg = random_stream(40, 400, 3)
    from torch_geometric.data import TemporalData
    data = TemporalData(src=src, dst=dst, t=t, msg=msg)
    for prefetch in (0, 2):
        loader = TemporalDataLoader(data, 30, 1.0, prefetch=prefetch, neighbor_loader=None,
                                    memory=None)
        torch.manual_seed(1)
        full = list(loader)
        torch.manual_seed(1)
        it = iter(loader)
        head = [next(it) for _ in range(4)]
        state = loader.state_dict()
        rng = torch.get_rng_state()
        del it
        loader.load_state_dict(state)
        torch.set_rng_state(rng)
        tail = list(loader)
        for a, b in zip(full, head + tail):
            assert torch.equal(a.neg_dst, b.neg_dst) and torch.equal(a.src, b.src)
        assert len(head + tail) == len(full)
        assert loader.state_dict() == {"position": None}  # between epochs
