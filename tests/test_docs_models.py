"""The runnable snippet of docs/tutorial_models.md runs."""
import re
from pathlib import Path

import torch

from .helpers import wait_no_threads

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorial_models.md"


def test_tutorial_models_snippet_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 1
    threads = torch.get_num_threads()
    exec(compile(blocks[0], str(PAGE), "exec"), {"__name__": "tutorial"})
    torch.set_num_threads(threads)
    out = capsys.readouterr().out.split("\n")
    apan = [line for line in out if line.startswith("APAN")][0].split()
    assert 0.0 <= float(apan[1]) <= 2.0  # realised staleness within the bound
    assert float(apan[2]) > 0
    assert any(line.startswith("JODIE") for line in out)
    dyrep = [line for line in out if line.startswith("DyRep")][0].split()
    assert 0.0 <= float(dyrep[1]) <= 2.0
    assert float(dyrep[2]) > 0
    assert not wait_no_threads()
