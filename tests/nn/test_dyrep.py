import copy

import pytest
import torch

from pyg_mspipe.nn import DyRepMemory, DyRepMessage, Neighborhood

from .common import MSG_DIM, NUM_NODES, batches, compare
from .reference import RefRNNMemory

TOLERANCES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]
EMB = 4


def neighborhood(n_id, t_max, dtype=torch.float32, num_edges=None):
    # Random sampled edges among n_id (some nodes with several, some with
    # none), the same for the same nodes: seeded by them.
    g = torch.Generator().manual_seed(int(n_id.sum()) * 31 + n_id.numel())
    num = n_id.numel()
    num_edges = 2 * num if num_edges is None else num_edges
    edge_index = torch.randint(0, num, (2, num_edges), generator=g)
    t = torch.randint(0, int(t_max) + 1, (num_edges,), generator=g)
    msg = torch.randn(num_edges, MSG_DIM, generator=g).to(dtype)
    return Neighborhood(n_id, edge_index, t, msg)


def with_neighborhood(memory, z, last_update, n_id, events):
    src, dst, t = events
    return z, (neighborhood(n_id, t.max(), z.dtype),)


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_dyrep_memory_matches_reference(dtype, tol):
    torch.manual_seed(0)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB)
    assert memory.raw_msg_dim == MSG_DIM
    assert memory.state.store.msg.size(1) == MSG_DIM + 2 * EMB
    with torch.no_grad():  # a visible attention (not drowned by the skip term)
        for p in memory.structural.parameters():
            p.mul_(3.0)
    compare(memory, RefRNNMemory, dtype, tol, embed=with_neighborhood, embedding_dim=EMB)


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
def test_dyrep_evaluation_reads_the_memory_as_is(dtype, tol):
    # Evaluation mode: the structural term from the memory as stored (what
    # forward returns there), the messages stored first, then applied.
    torch.manual_seed(1)
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB).to(dtype)
    ref = RefRNNMemory(copy.deepcopy(memory), NUM_NODES, embedding_dim=EMB)
    stream = batches(seed=3)
    for n_id, src, dst, t, msg in stream[:2]:
        nb = neighborhood(n_id, t.max(), dtype)
        memory.update_state(src, dst, t, msg.to(dtype), nb)
        ref.update_state(src, dst, t, msg.to(dtype), nb)
    memory.eval()
    ref.flush()
    for n_id, src, dst, t, msg in stream[2:]:
        nb = neighborhood(n_id, t.max(), dtype)
        memory.update_state(src, dst, t, msg.to(dtype), nb)
        ref.update_state(src, dst, t, msg.to(dtype), nb, training=False)
        torch.testing.assert_close(memory.memory, torch.stack(ref.s), rtol=tol, atol=tol)
        assert memory.last_update.tolist() == ref.lu


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


def test_dyrep_bad_neighborhood_rejected_without_state_change():
    memory = DyRepMemory(NUM_NODES, MSG_DIM, 6, 5, embedding_dim=EMB)
    src, dst = torch.tensor([0, 1]), torch.tensor([2, 3])
    t, msg = torch.tensor([1, 2]), torch.randn(2, MSG_DIM)
    memory(torch.arange(4))
    before = memory.state_dict()
    good = neighborhood(torch.arange(5), 0)
    bad = [
        ((src, dst, t, msg, good._replace(n_id=torch.tensor([0, 1, 2, 4, 5]))), "contain every"),
        ((src, dst, t, msg, good._replace(n_id=torch.tensor([], dtype=torch.long))),
         "contain every"),
        ((src, dst, t, msg, good._replace(edge_index=good.edge_index + 5)), "positions"),
        ((src, dst, t, msg, good._replace(msg=good.msg[:, :1])), "neighborhood.msg"),
        ((src, dst, t, msg, good._replace(t=good.t[:-1])), "neighborhood"),
        ((src, dst, t, msg, tuple(good)), "Neighborhood"),
        ((src, dst, t, torch.randn(2, MSG_DIM + 2 * EMB), good), "msg"),
        ((src, dst, torch.tensor([2, 1]), msg, good), "sorted"),
        ((src, dst + NUM_NODES, t, msg, good), "dst"),
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
