"""`pyg-mspipe bench` on tiny data: the ratio table and the timeline PNG."""
import re

import torch

from .common import run_cli


def test_bench_prints_ratio_table_and_writes_timeline(capsys, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, out, err = run_cli(capsys, "bench", "--data", "synthetic:events=300,nodes=30",
                                 "--max-events", "120", "--batch-size", "40", "--rounds", "2",
                                 "--timeline", tmp_path / "timeline.png")
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    assert "120 training events, batch 40, 2 round(s)" in out
    assert len(re.findall(r"^round \d: interleaved per batch: pyg [\d.]+s ours [\d.]+s",
                          out, re.M)) == 2
    assert re.search(r"^ours +interleaved per batch +[\d.]+ +[\d.]+x$", out, re.M)
    assert re.search(r"^ours, s=2 fixed +alternating per epoch +[\d.]+ +[\d.]+x$", out, re.M)
    assert "realised staleness max 2" in out
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_without_pipeline_writes_no_timeline(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "bench", "--data", "synthetic:events=300,nodes=30",
                           "--max-events", "80", "--batch-size", "40", "--rounds", "1",
                           "--no-pipeline", "--timeline", tmp_path / "timeline.png")
    assert code == 0
    assert "ours, s=" not in out and not (tmp_path / "timeline.png").exists()
