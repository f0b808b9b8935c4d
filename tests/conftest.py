"""Shared fixtures."""
import pytest
import torch
import torch_geometric.typing

import pyg_mspipe._scatter


@pytest.fixture(params=["torch_scatter", "fallback"])
def scatter_backends(request, monkeypatch):
    """Runs a test with and without torch_scatter (the fallback path is forced
    for both PyG and pyg_mspipe when it is installed)."""
    if request.param == "torch_scatter":
        if not pyg_mspipe._scatter.WITH_TORCH_SCATTER:
            pytest.skip("torch_scatter is not installed")
    else:
        monkeypatch.setattr(pyg_mspipe._scatter, "WITH_TORCH_SCATTER", False)
        monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SCATTER", False)
    return request.param


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
