"""`pyg-mspipe datasets`: the bundled data and every file format."""
from pyg_mspipe.datasets import FORMATS, bundled_datasets

from .common import run_cli


def test_datasets_lists_bundled_data_and_formats(capsys):
    code, out, err = run_cli(capsys, "datasets")
    assert code == 0 and err == ""
    for name, description in bundled_datasets():
        assert f"  {name:<12} {description}" in out
    for name, description in FORMATS.items():
        assert f"  {name:<6} {description}" in out
    assert "wikipedia" in out and "synthetic:events=E,nodes=N" in out and "jodie:<name>" in out
