"""A rank that raises, and one killed with SIGKILL: every process exits
non-zero within 60 s, and the others' errors name the failing rank."""
import pytest

from tests.distributed.common import launch


@pytest.mark.parametrize("world_size,scenario,config", [
    (2, "raise", "sequential"),
    (3, "kill", "bound2"),
])
def test_failing_rank(tmp_path, world_size, scenario, config):
    results = launch(world_size, scenario, tmp_path, timeout=90.0, extra=(config,))
    failing = world_size - 1
    failed_at = float((tmp_path / "failed_at").read_text())
    for rank, (code, err, ended) in enumerate(results):
        seconds = ended - failed_at
        assert code is not None, f"rank {rank} still ran after 90 s:\n{err[-2000:]}"
        assert code != 0, f"rank {rank} exited with 0"
        assert seconds < 60, f"rank {rank} took {seconds:.0f} s"
        if rank != failing:
            assert "DistributedError" in err, err[-2000:]
            assert f"rank {failing}" in err.lower(), err[-2000:]
    if scenario == "raise":
        assert "test failure injected" in results[failing][1]
