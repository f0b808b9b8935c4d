import copy

import pytest
import torch

from pyg_mspipe.nn import DyRepMemory, DyRepMessage
from pyg_mspipe.nn._dyrep_state import Neighborhood

from .common import MSG_DIM, NUM_NODES, batches, compare
from .reference import RefRNNMemory

TOLERANCES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]
EMB = 4


K = 3  # recent edges per node: fewer than a node's events in some batches


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_dyrep_memory_matches_reference(dtype, tol):
    torch.manual_seed(0)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB, num_neighbors=K)
    assert memory.raw_msg_dim == MSG_DIM
    assert memory.state.store.msg.size(1) == MSG_DIM + 2 * EMB
    with torch.no_grad():  # a visible attention (not drowned by the skip term)
        for p in memory.structural.parameters():
            p.mul_(3.0)
    compare(memory, RefRNNMemory, dtype, tol, embedding_dim=EMB, num_neighbors=K)


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_dyrep_evaluation_reads_the_memory_as_is(dtype, tol):
    # Evaluation mode: the structural term from the memory as stored (what
    # forward returns there), the messages stored first, then applied.
    torch.manual_seed(1)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB, num_neighbors=K).to(dtype)
    ref = RefRNNMemory(copy.deepcopy(memory), NUM_NODES, embedding_dim=EMB, num_neighbors=K)
    stream = batches(seed=3)
    for _, src, dst, t, msg in stream[:2]:
        memory.update_state(src, dst, t, msg.to(dtype))
        ref.update_state(src, dst, t, msg.to(dtype))
    memory.eval()
    ref.flush()
    for _, src, dst, t, msg in stream[2:]:
        memory.update_state(src, dst, t, msg.to(dtype))
        ref.update_state(src, dst, t, msg.to(dtype), training=False)
        torch.testing.assert_close(memory.memory, torch.stack(ref.s), rtol=tol, atol=tol)
        assert memory.last_update.tolist() == ref.lu


def test_dyrep_recent_edges_survive_a_flush_and_a_checkpoint():
    # The recent edges are state: leaving training mode keeps them, a
    # checkpoint carries them, reset_state forgets them.
    torch.manual_seed(2)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB, num_neighbors=K)
    stream = batches(seed=4)
    for _, src, dst, t, msg in stream[:3]:
        memory.update_state(src, dst, t, msg)
    recent = memory.state.recent
    held = (recent.loader.e_id.clone(), recent.t.clone(), recent.msg.clone())
    assert bool((held[0] >= 0).any())
    memory.eval()
    assert torch.equal(recent.loader.e_id, held[0])
    copy_ = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB, num_neighbors=K).eval()
    copy_.load_state_dict(memory.state_dict())
    for _, src, dst, t, msg in stream[3:]:
        memory.update_state(src, dst, t, msg)
        copy_.update_state(src, dst, t, msg)
    assert torch.equal(memory.memory, copy_.memory)
    assert torch.equal(memory.state.recent.msg, copy_.state.recent.msg)
    wrong = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB, num_neighbors=K + 1)
    before = wrong.state_dict()
    with pytest.raises(RuntimeError, match="recent edges"):
        wrong.load_state_dict(memory.state_dict())
    assert torch.equal(wrong.memory, before["memory"])  # nothing loaded
    memory.reset_state()
    assert bool((memory.state.recent.loader.e_id < 0).all())
    assert not memory.state.recent.msg.any()


def test_structural_term_independent_of_rows_around_it():
    # The padded attention gives each node's embedding bit for bit whatever
    # other nodes and edges are sampled with it (the pipeline and distributed
    # replicas rely on it).
    from pyg_mspipe.nn.dyrep import structural_embedding
    torch.manual_seed(2)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 16, 8, embedding_dim=8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(NUM_NODES, 16, generator=g)
    lu = torch.randint(0, 50, (NUM_NODES,), generator=g)
    # node 0 with three neighbours, then more and more unrelated nodes and edges
    base = Neighborhood(torch.arange(4), torch.tensor([[1, 2, 3], [0, 0, 0]]),
                        torch.tensor([10, 20, 30]), torch.randn(3, MSG_DIM, generator=g))
    with torch.no_grad():
        want = structural_embedding(memory.structural, x[:4], lu[:4], base)[0]
        for extra in range(1, 13):
            n = 4 + extra
            ei = torch.cat([base.edge_index, torch.stack([torch.arange(4, n),
                                                          torch.arange(4, n).flip(0)])], 1)
            nb = Neighborhood(torch.arange(n), ei, torch.cat([base.t, torch.full((extra,), 5)]),
                              torch.cat([base.msg, torch.randn(extra, MSG_DIM, generator=g)]))
            got = structural_embedding(memory.structural, x[:n], lu[:n], nb)[0]
            assert torch.equal(got, want), extra


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


def test_dyrep_bad_input_rejected_without_state_change():
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB)
    src, dst = torch.tensor([0, 1]), torch.tensor([2, 3])
    t, msg = torch.tensor([1, 2]), torch.randn(2, MSG_DIM)
    memory.update_state(src, dst, t, msg)
    memory(torch.arange(4))
    before = memory.state_dict()
    bad = [
        ((src, dst, t, torch.randn(2, MSG_DIM + 2 * EMB)), "msg"),
        ((src, dst, torch.tensor([2, 1]) + 5, msg), "sorted"),
        ((src, dst + NUM_NODES, t + 5, msg), "dst"),
        ((src, dst, torch.tensor([0, 0]), msg), "time"),
    ]
    for args, what in bad:
        with pytest.raises((ValueError, TypeError), match=what):
            memory.update_state(*args)
    after = memory.state_dict()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
    with pytest.raises(ValueError, match="even"):
        DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=5)
    with pytest.raises(ValueError, match="num_neighbors"):
        DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=4, num_neighbors=0)
