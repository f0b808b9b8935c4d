"""`pyg-mspipe train --recipe dyglib --staleness-bound S`: the recipe's
sampler drawn ahead by the loader, its memory reads pipelined."""
import json

import pytest

from pyg_mspipe.loader.temporal import usable_cores

from .common import TINY, run_cli

# (--threads 1 sets the process's intra-op threads: put them back after)
pytestmark = pytest.mark.usefixtures("one_thread")


def _run(capsys, tmp_path, name, *extra):
    path = tmp_path / f"{name}.json"
    code, out, err = run_cli(capsys, "train", *TINY, "--recipe", "dyglib", "--epochs", "2",
                             "--negatives", "random", "--threads", "1", "--json", path, "-q",
                             *extra)
    assert code == 0, err
    return json.loads(path.read_text())


def _figures(summary):
    return [(e["loss"], e["val"]["ap"], e["test"]["ap"]) for e in summary["epochs"]]


# The sequential run draws its training negatives as the pipelined one
# does (the loader's private generator) only when it prefetches too, i.e.
# with a core to spare beyond its one intra-op thread; without, it draws
# them from the global RNG, as PyG's loader.
@pytest.mark.skipif(usable_cores() < 2, reason="the sequential loader prefetches only "
                    "with a core to spare beyond its one thread")
def test_recipe_at_bound_zero_is_the_sequential_run(capsys, tmp_path):
    seq = _run(capsys, tmp_path, "seq")
    s0 = _run(capsys, tmp_path, "s0", "--staleness-bound", "0", "--schedule", "fixed")
    assert _figures(s0) == _figures(seq)


def test_recipe_pipelined_reads_are_stale(capsys, tmp_path):
    s2 = _run(capsys, tmp_path, "s2", "--staleness-bound", "2", "--schedule", "fixed")
    assert s2["pipeline"]["max_staleness"] == 2
    assert all(0 < e["test"]["ap"] <= 1 for e in s2["epochs"])
