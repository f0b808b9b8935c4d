"""MessageStore: semantics, compaction, persistence."""
import io

import torch

from pyg_mspipe import IdentityMessage, LastAggregator, MessageStore, TGNMemory

from .helpers import random_stream


def reference_store(batches, num_nodes):
    """PyG's dict semantics: per node, its events of the latest batch."""
    store = {}
    for key, other, t, msg in batches:
        k_sorted, perm = key.sort()
        for node in k_sorted.unique().tolist():
            idx = perm[k_sorted == node]
            store[node] = (other[idx], t[idx], msg[idx])
    return store


def gathered(store, node):
    rows, owner = store.locate(torch.tensor([node]))
    return store.other[rows], store.t[rows], store.msg[rows]


def test_matches_dict_semantics_across_compactions():
    num_nodes, dim = 30, 4
    store = MessageStore(num_nodes, dim, capacity=8)  # forces many compactions
    batches = []
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        size = int(torch.randint(1, 25, (1,), generator=g))
        key = torch.randint(0, num_nodes, (size,), generator=g)
        other = torch.randint(0, num_nodes, (size,), generator=g)
        t = i + torch.randint(0, 3, (size,), generator=g).sort().values
        msg = torch.randn(size, dim, generator=g)
        store.insert(key, other, t, msg)
        batches.append((key, other, t, msg))
        ref = reference_store(batches, num_nodes)
        for node in range(num_nodes):
            o, tt, m = gathered(store, node)
            if node in ref:
                assert torch.equal(o, ref[node][0]) and torch.equal(tt, ref[node][1])
                assert torch.equal(m, ref[node][2])
                # the kept (last) message: the first one with the largest t
                first_max = int((tt == tt.max()).nonzero()[0, 0])
                row = int(store.last[node])
                assert int(store.t[row]) == int(tt.max()) == int(store.last_t[node])
                assert torch.equal(store.msg[row], m[first_max])
            else:
                assert o.numel() == 0 and int(store.last_t[node]) == MessageStore.EMPTY_T
    assert store.capacity >= store.num_messages()
    live = store.num_messages()
    assert live == sum(v[0].numel() for v in ref.values())


def test_locate_groups_by_position_and_handles_duplicates():
    store = MessageStore(5, 2)
    store.insert(torch.tensor([1, 3, 1]), torch.tensor([0, 0, 4]), torch.tensor([1, 2, 3]),
                 torch.arange(6.0).view(3, 2))
    rows, owner = store.locate(torch.tensor([3, 1, 0, 1]))
    assert owner.tolist() == [0, 1, 1, 3, 3]
    assert store.t[rows].tolist() == [2, 1, 3, 1, 3]


def test_state_dict_round_trip_and_to():
    mem = TGNMemory(20, 3, 4, 4, IdentityMessage(3, 4, 4), LastAggregator())
    src, dst, t, msg = random_stream(20, 60, 3)
    for i in range(0, 60, 15):
        mem.update_state(src[i:i + 15], dst[i:i + 15], t[i:i + 15], msg[i:i + 15])
    buf = io.BytesIO()
    torch.save(mem.state_dict(), buf)
    buf.seek(0)
    other = TGNMemory(20, 3, 4, 4, IdentityMessage(3, 4, 4), LastAggregator())
    other.load_state_dict(torch.load(buf))
    n_id = torch.arange(20)
    for a, b in zip(mem(n_id), other(n_id)):
        assert torch.equal(a, b)
    assert other.msg_store.num_messages() == mem.msg_store.num_messages()
    assert torch.equal(other.msg_store.last_t, mem.msg_store.last_t)
    moved = other.to(torch.float64)
    assert moved.msg_store.msg.dtype == torch.float64


def test_clear_keeps_capacity():
    store = MessageStore(10, 2, capacity=4)
    store.insert(torch.arange(10), torch.arange(10), torch.arange(10), torch.ones(10, 2))
    cap = store.capacity
    store.clear()
    assert store.num_messages() == 0 and store.capacity == cap and store.arena_size == 0
