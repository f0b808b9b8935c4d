"""LastNeighborLoader: PyG equality without overflow, correct on overflow."""
import copy

import pytest
import torch
from torch_geometric.nn.models.tgn import LastNeighborLoader as PyGLoader

from pyg_mspipe import LastNeighborLoader

from ..helpers import random_stream

N, SIZE = 30, 4


def no_overflow_stream(num_batches, batch_size, seed):
    """Batches in which no node gets more than SIZE events (both directions)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(num_batches):
        while True:
            src = torch.randint(0, N, (batch_size,), generator=g)
            dst = torch.randint(0, N, (batch_size,), generator=g)
            if torch.bincount(torch.cat([src, dst]), minlength=N).max() <= SIZE:
                break
        batches.append((src, dst))
    return batches


def assert_same_sample(a, b):
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("seed", range(4))
def test_matches_pyg_without_overflow(seed):
    ref, ours = PyGLoader(N, SIZE), LastNeighborLoader(N, SIZE)
    g = torch.Generator().manual_seed(100 + seed)
    for src, dst in no_overflow_stream(25, 6, seed):
        n_id = torch.randint(0, N, (8,), generator=g).unique()
        assert_same_sample(ref(n_id), ours(n_id))
        ref.insert(src, dst)
        ours.insert(src, dst)
        assert ref.cur_e_id == ours.cur_e_id
        assert torch.equal(ref.e_id, ours.e_id)
        valid = ours.e_id >= 0
        assert torch.equal(ref.neighbors[valid], ours.neighbors[valid])
    ref.reset_state()
    ours.reset_state()
    assert_same_sample(ref(torch.arange(N)), ours(torch.arange(N)))


def test_overflow_keeps_most_recent_where_pyg_does_not():
    # 40 events among 4 nodes in one batch: node 0 gets far more than 3.
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, 4, (40,), generator=g)
    dst = torch.randint(0, 4, (40,), generator=g)
    ref, ours = PyGLoader(4, 3), LastNeighborLoader(4, 3)
    ref.insert(src, dst)
    ours.insert(src, dst)
    involved = ((src == 0) | (dst == 0)).nonzero().view(-1)
    newest = involved.flip(0)[:3].tolist()  # the 3 most recent events of node 0
    assert newest == [39, 37, 34]
    assert ours.e_id[0].tolist() == newest
    assert sorted(ref.e_id[0].tolist(), reverse=True) == [18, 15, 2]  # PyG's answer


@pytest.mark.parametrize("seed", range(3))
def test_overflow_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    ours = LastNeighborLoader(6, 3)
    history = {v: [] for v in range(6)}
    e = 0
    for _ in range(15):
        src = torch.randint(0, 6, (9,), generator=g)
        dst = torch.randint(0, 6, (9,), generator=g)
        ours.insert(src, dst)
        for s, d in zip(src.tolist(), dst.tolist()):
            history[d].append((e, s))
            history[s].append((e, d))
            e += 1
        for v in range(6):
            newest = sorted(history[v], reverse=True)[:3]
            got = [(int(i), int(n)) for i, n in zip(ours.e_id[v], ours.neighbors[v]) if i >= 0]
            assert sorted(got, reverse=True) == newest


def test_state_dict_and_clone_are_independent():
    ours = LastNeighborLoader(N, SIZE)
    for src, dst in no_overflow_stream(5, 5, 0):
        ours.insert(src, dst)
    state = ours.state_dict()
    twin = copy.deepcopy(ours)
    ours.insert(torch.tensor([1]), torch.tensor([2]))
    assert twin.cur_e_id == state["cur_e_id"] != ours.cur_e_id
    other = LastNeighborLoader(N, SIZE)
    other.load_state_dict(state)
    assert_same_sample(other(torch.arange(N)), twin(torch.arange(N)))


@pytest.mark.parametrize("call, match", [
    (lambda nl: nl(torch.tensor([0, N])), "outside"),
    (lambda nl: nl(torch.tensor([0.5])), "integer"),
    (lambda nl: nl.insert(torch.tensor([0, 1]), torch.tensor([1])), "same length"),
    (lambda nl: nl.insert(torch.tensor([-1]), torch.tensor([1])), "outside"),
])
def test_bad_input_rejected_state_unchanged(call, match):
    nl = LastNeighborLoader(N, SIZE)
    nl.insert(torch.tensor([1, 2]), torch.tensor([3, 4]))
    before = nl.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        call(nl)
    after = nl.state_dict()
    assert torch.equal(before["e_id"], after["e_id"]) and before["cur_e_id"] == after["cur_e_id"]


def test_bad_constructor():
    with pytest.raises(ValueError, match="size"):
        LastNeighborLoader(10, 0)


def test_can_be_deep_copied_pickled_and_saved(tmp_path):
    """Issue 10, defect 6: PyG's LastNeighborLoader can be deep-copied,
    pickled and torch.save'd; ours too (it used to hold a threading.Lock),
    also while it holds a sample prepared by a prefetching loader."""
    import copy
    import pickle

    from torch_geometric.data import TemporalData

    from pyg_mspipe import TemporalDataLoader

    src, dst, t, msg = random_stream(30, 60, 4, seed=3)
    nl = LastNeighborLoader(30, 4)
    data = TemporalData(src=src, dst=dst, t=t, msg=msg)
    for batch in TemporalDataLoader(data, 20, prefetch=2, neighbor_loader=nl):
        nl.insert(batch.src, batch.dst)  # (a prepared sample stays offered)
    torch.save(nl, tmp_path / "nl.pt")
    copies = [copy.deepcopy(nl), pickle.loads(pickle.dumps(nl)),
              torch.load(tmp_path / "nl.pt", weights_only=False)]
    n_id = torch.arange(30)
    for other in copies:
        for a, b in zip(other(n_id), nl(n_id)):
            assert torch.equal(a, b)
        other.insert(src[:5], dst[:5])  # independent state
    assert nl.cur_e_id == 60 and all(c.cur_e_id == 65 for c in copies)
