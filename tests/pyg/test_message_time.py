"""IdentityMessage and TimeEncoder equal PyG's, parameter names included."""
import torch
import torch_geometric.nn.models.tgn as pyg_tgn

from pyg_mspipe import IdentityMessage, TimeEncoder
from pyg_mspipe.engine.timing import PhaseTimer


def test_identity_message_matches_pyg():
    ours, ref = IdentityMessage(3, 4, 5), pyg_tgn.IdentityMessage(3, 4, 5)
    assert ours.out_channels == ref.out_channels == 3 + 2 * 4 + 5
    args = (torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 3), torch.randn(6, 5))
    assert torch.equal(ours(*args), ref(*args))


def test_time_encoder_matches_pyg_and_loads_its_state():
    ref = pyg_tgn.TimeEncoder(7)
    ours = TimeEncoder(7)
    ours.load_state_dict(ref.state_dict())
    t = torch.tensor([0.0, 1.0, 1e5, 2.6e6])
    assert torch.equal(ours(t), ref(t))
    ours.reset_parameters()
    assert not torch.equal(ours.lin.weight, ref.lin.weight)


def test_phase_timer_accumulates():
    timer = PhaseTimer()
    for _ in range(3):
        with timer("a"):
            pass
    with timer("b"):
        sum(range(1000))
    assert set(timer.seconds) == {"a", "b"} and timer.total() >= timer.seconds["b"] > 0

