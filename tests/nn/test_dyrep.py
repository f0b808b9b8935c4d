import pytest
import torch

from pyg_mspipe.nn import DyRepMemory, DyRepMessage

from .common import MSG_DIM, NUM_NODES, compare
from .reference import RefRNNMemory

TOLERANCES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]
EMB = 4


def structural(weight):
    # a stand-in for the attention embedding: any function of forward's rows
    def embed(memory, z, last_update, n_id, events):
        src, dst, _ = events
        h = torch.tanh(z @ weight.to(z.dtype))
        pos = {int(v): i for i, v in enumerate(n_id)}
        idx = lambda x: torch.tensor([pos[int(v)] for v in x])  # noqa: E731
        return z, (h[idx(src)], h[idx(dst)])
    return embed


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_dyrep_memory_matches_reference(dtype, tol):
    torch.manual_seed(0)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB)
    assert memory.raw_msg_dim == MSG_DIM + 2 * EMB and memory.edge_dim == MSG_DIM
    weight = torch.randn(6, EMB, generator=torch.Generator().manual_seed(5))
    compare(memory, RefRNNMemory, dtype, tol, embed=structural(weight), embedding_dim=EMB)


def test_dyrep_message_takes_the_other_endpoints_embedding():
    raw = torch.arange(2 * (MSG_DIM + 2 * EMB), dtype=torch.float).view(2, -1)
    z, other, t_enc = torch.zeros(2, 6), torch.ones(2, 6), torch.full((2, 5), -1.0)
    out_s = DyRepMessage(MSG_DIM, 6, EMB, 5, side="src")(z, other, raw, t_enc)
    out_d = DyRepMessage(MSG_DIM, 6, EMB, 5, side="dst")(z, other, raw, t_enc)
    assert torch.equal(out_s[:, 6:6 + EMB], raw[:, MSG_DIM + EMB:])  # h_dst
    assert torch.equal(out_d[:, 6:6 + EMB], raw[:, MSG_DIM:MSG_DIM + EMB])  # h_src
    assert torch.equal(out_s[:, 6 + EMB:6 + EMB + MSG_DIM], raw[:, :MSG_DIM])
    with pytest.raises(ValueError, match="side"):
        DyRepMessage(MSG_DIM, 6, EMB, 5, side="both")


def test_dyrep_bad_embeddings_rejected_without_state_change():
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB)
    src, dst = torch.tensor([0, 1]), torch.tensor([2, 3])
    t, msg = torch.tensor([1, 2]), torch.randn(2, MSG_DIM)
    memory(torch.arange(4))
    before = memory.state_dict()
    for src_emb, dst_emb, what in [(torch.randn(2, EMB + 1), torch.randn(2, EMB), "src_emb"),
                                   (torch.randn(2, EMB), torch.randn(3, EMB), "dst_emb"),
                                   (torch.randn(2, EMB), None, "dst_emb")]:
        with pytest.raises(ValueError, match=what):
            memory.update_state(src, dst, t, msg, src_emb, dst_emb)
    with pytest.raises(ValueError, match="raw_msg"):
        memory.update_state(src, dst, t, torch.randn(2, MSG_DIM + 2 * EMB),
                            torch.randn(2, EMB), torch.randn(2, EMB))
    with pytest.raises(ValueError):
        memory.update_state(src, dst, torch.tensor([2, 1]), msg, torch.randn(2, EMB),
                            torch.randn(2, EMB))
    after = memory.state_dict()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
