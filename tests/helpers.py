"""Shared test helpers: random event streams and the scatter-backend switch."""
import pytest
import torch
import torch_geometric.typing

import pyg_mspipe._scatter


def random_stream(num_nodes, num_events, msg_dim, seed=0, t0=0, tie_prob=0.2,
                  burst_nodes=3):
    """A sorted random event stream with repeated nodes, equal timestamps and
    bursts (a few hot nodes that get many events per batch)."""
    g = torch.Generator().manual_seed(seed)
    hot = torch.randint(0, num_nodes, (burst_nodes,), generator=g)
    src = torch.randint(0, num_nodes, (num_events,), generator=g)
    dst = torch.randint(0, num_nodes, (num_events,), generator=g)
    burst = torch.rand(num_events, generator=g) < 0.3
    src[burst] = hot[torch.randint(0, burst_nodes, (int(burst.sum()),), generator=g)]
    steps = torch.randint(1, 5, (num_events,), generator=g)
    steps[torch.rand(num_events, generator=g) < tie_prob] = 0
    t = t0 + steps.cumsum(0)
    msg = torch.randn(num_events, msg_dim, generator=g, dtype=torch.get_default_dtype())
    return src, dst, t, msg


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
