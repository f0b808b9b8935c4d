"""Helpers of the command-line tests: run `pyg-mspipe` in this process."""
from __future__ import annotations

import pytest
import torch

from pyg_mspipe.cli import main

#: A tiny run: a few hundred synthetic events, small model (seconds).
TINY = ["--data", "synthetic:events=400,nodes=30", "--batch-size", "40", "--memory-dim", "8",
        "--embedding-dim", "8", "--time-dim", "8", "--msg-dim", "4"]


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (tiny runs are faster so)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Runs main(argv); returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out, err
