import pytest
import torch

from pyg_mspipe.nn import JODIEMemory, TimeProjectionEmbedding

from .common import MSG_DIM, NUM_NODES, compare
from .reference import RefRNNMemory, time_projection

TOLERANCES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_jodie_memory_matches_reference(dtype, tol):
    torch.manual_seed(0)
    memory = JODIEMemory(NUM_NODES, MSG_DIM, 6, 5)
    assert isinstance(memory.gru, torch.nn.RNNCell)
    compare(memory, RefRNNMemory, dtype, tol)


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_time_projection_matches_equation(dtype, tol):
    torch.manual_seed(1)
    proj = TimeProjectionEmbedding(6).to(dtype)
    s = torch.randn(9, 6, dtype=dtype, requires_grad=True)
    last_update = torch.randint(0, 50, (9,))
    t = last_update + torch.randint(0, 30, (9,))
    out = proj(s, last_update, t)
    ref = torch.stack([time_projection(proj, s[i], float(last_update[i]), float(t[i]))
                       for i in range(9)])
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    g_out = torch.autograd.grad(out.sum(), [s, proj.lin.weight])
    g_ref = torch.autograd.grad(ref.sum(), [s, proj.lin.weight])
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_time_projection_reset_parameters_redraws():
    proj = TimeProjectionEmbedding(4)
    before = proj.lin.weight.clone()
    proj.reset_parameters()
    assert not torch.equal(before, proj.lin.weight)
