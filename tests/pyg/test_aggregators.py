"""LastAggregator / MeanAggregator semantics, with and without torch_scatter."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_geometric.nn.models.tgn as pyg_tgn
import torch_geometric.typing

import pyg_mspipe._scatter
from pyg_mspipe import LastAggregator, MeanAggregator
from pyg_mspipe._scatter import scatter_argmax


def case(seed=0, num=60, groups=15):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, groups - 3, (num,), generator=g)  # last 3 groups empty
    t = torch.randint(0, 4, (num,), generator=g)  # many ties
    msg = torch.randn(num, 5, generator=g)
    return msg, index, t, groups


def reference_last(msg, index, t, dim_size):
    """Slow, obviously correct: the first message with the largest t."""
    out = msg.new_zeros(dim_size, msg.size(1))
    for j in range(dim_size):
        pos = (index == j).nonzero().view(-1)
        if pos.numel():
            best = pos[t[pos] == t[pos].max()][0]
            out[j] = msg[best]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_last_aggregator_ties_first_and_empty_rows_zero(seed, scatter_backends):
    msg, index, t, n = case(seed)
    out = LastAggregator()(msg, index, t, n)
    assert torch.equal(out, reference_last(msg, index, t, n))
    assert torch.count_nonzero(out[-3:]) == 0


@pytest.mark.parametrize("seed", range(5))
def test_last_aggregator_matches_pyg_with_torch_scatter(seed):
    if not pyg_mspipe._scatter.WITH_TORCH_SCATTER:
        pytest.skip("torch_scatter is not installed")
    msg, index, t, n = case(seed)
    assert torch.equal(LastAggregator()(msg, index, t, n),
                       pyg_tgn.LastAggregator()(msg, index, t, n))
    import torch_scatter
    arg = torch_scatter.scatter_max(t, index, dim=0, dim_size=n)[1]
    assert torch.equal(scatter_argmax(t, index, n), arg)


def test_pyg_fallback_differs_and_ours_does_not(monkeypatch):
    """Documents why our LastAggregator exists: PyG's fallback without
    torch_scatter picks the last of tied messages and an arbitrary message for
    empty rows; ours keeps torch_scatter's semantics."""
    monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SCATTER", False)
    monkeypatch.setattr(pyg_mspipe._scatter, "WITH_TORCH_SCATTER", False)
    msg = torch.arange(6.0).view(3, 2)
    index = torch.tensor([0, 0, 1])
    t = torch.tensor([5, 5, 1])
    ours = LastAggregator()(msg, index, t, 3)
    theirs = pyg_tgn.LastAggregator()(msg, index, t, 3)
    assert torch.equal(ours, torch.tensor([[0.0, 1.0], [4.0, 5.0], [0.0, 0.0]]))
    assert not torch.equal(theirs, ours)


def test_last_aggregator_gradient_only_to_kept_rows(scatter_backends):
    msg, index, t, n = case(7)
    msg.requires_grad_()
    LastAggregator()(msg, index, t, n).sum().backward()
    kept = scatter_argmax(t, index, n)
    kept = kept[kept < msg.size(0)]
    expected = torch.zeros_like(msg)
    expected[kept] = 1.0
    assert torch.equal(msg.grad, expected)


def test_last_aggregator_no_messages():
    out = LastAggregator()(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
                           torch.zeros(0, dtype=torch.long), 3)
    assert out.shape == (3, 4) and torch.count_nonzero(out) == 0


@pytest.mark.parametrize("seed", range(3))
def test_mean_aggregator_matches_pyg(seed):
    msg, index, t, n = case(seed)
    torch.testing.assert_close(MeanAggregator()(msg, index, t, n),
                               pyg_tgn.MeanAggregator()(msg, index, t, n), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("cls", [LastAggregator, MeanAggregator])
def test_aggregators_are_scriptable_with_the_same_numbers(cls, scatter_backends):
    """torch.jit.script works (PyG's aggregators can be scripted) and the
    scripted module gives the eager numbers: ties to the first message, zero
    rows for nodes without messages, on the torch_scatter and fallback paths."""
    scripted = torch.jit.script(cls())
    eager = cls()
    for seed in range(5):
        msg, index, t, n = case(seed)
        out = scripted(msg, index, t, n)
        assert torch.equal(out, eager(msg, index, t, n))
        assert torch.count_nonzero(out[-3:]) == 0
        if cls is LastAggregator:
            assert torch.equal(out, reference_last(msg, index, t, n))
            if scatter_backends == "torch_scatter":
                assert torch.equal(out, pyg_tgn.LastAggregator()(msg, index, t, n))
        else:
            assert torch.equal(out, pyg_tgn.MeanAggregator()(msg, index, t, n))
    empty = (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
             torch.zeros(0, dtype=torch.long), 3)
    assert torch.equal(scripted(*empty), torch.zeros(3, 4))
    msg, index, t, n = case(7)
    msg.requires_grad_()
    scripted(msg, index, t, n).sum().backward()
    grad = msg.grad.clone()
    msg.grad = None
    eager(msg, index, t, n).sum().backward()
    assert torch.equal(grad, msg.grad)


def test_scriptable_without_torch_scatter_installed():
    """With torch_scatter not importable at all, the aggregators still script
    and keep the torch_scatter semantics."""
    code = (
        "import sys; sys.modules['torch_scatter'] = None\n"
        "import torch\n"
        "import pyg_mspipe._scatter as s\n"
        "from pyg_mspipe import LastAggregator, MeanAggregator\n"
        "assert not s.WITH_TORCH_SCATTER\n"
        "msg = torch.arange(8.0).view(4, 2)\n"
        "index = torch.tensor([0, 0, 1, 1])\n"
        "t = torch.tensor([5, 5, 1, 2])\n"
        "out = torch.jit.script(LastAggregator())(msg, index, t, 3)\n"
        "assert torch.equal(out, torch.tensor([[0.0, 1.0], [6.0, 7.0], [0.0, 0.0]])), out\n"
        "out = torch.jit.script(MeanAggregator())(msg, index, t, 3)\n"
        "assert torch.equal(out, torch.tensor([[1.0, 2.0], [5.0, 6.0], [0.0, 0.0]])), out\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
