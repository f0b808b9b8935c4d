"""examples/tgn.py, the main job, runs end to end (sequential and pipelined)."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tgn.py"

pytestmark = pytest.mark.timeout(300)


def test_example_pipelined_with_timeline(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "timeline.png"
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--epochs", "1", "--staleness-bound", "1",
         "--timeline", str(png)],
        capture_output=True, text=True, timeout=280, check=True).stdout
    assert "test AP" in out and "PipelineStats(iterations=210, bound=1" in out
    assert png.stat().st_size > 1000


def test_example_rejects_negative_staleness():
    res = subprocess.run([sys.executable, str(EXAMPLE), "--epochs", "1",
                          "--staleness-bound", "-1"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0 and "'staleness_bound' must be" in res.stderr
