"""MessageStore: semantics, compaction, persistence."""
import io

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory
from pyg_mspipe.nn._message_store import MessageStore

from ..helpers import random_stream

aten = torch.ops.aten


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
                assert int(store.t[row]) == int(tt.max()) == int(store.kept_t[node])
                assert torch.equal(store.msg[row], m[first_max])
            else:
                assert o.numel() == 0 and int(store.kept_t[node]) == MessageStore.EMPTY_T
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
    assert torch.equal(other.msg_store.kept_t, mem.msg_store.kept_t)
    moved = other.to(torch.float64)
    assert moved.msg_store.msg.dtype == torch.float64


def test_state_dict_into_a_small_store_with_trailing_empty_slots():
    store = MessageStore(5, 2)
    store.insert(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([1, 2]),
                 torch.ones(2, 2))
    other = MessageStore(5, 2, capacity=1)  # the loaded arena is exactly full
    other.load_state_dict(store.state_dict())
    assert other.kept_t.tolist() == [1, 2] + [MessageStore.EMPTY_T] * 3
    assert other.slot[:2].tolist() == [0, 1] and other.num_messages() == 2


def test_clear_keeps_capacity():
    store = MessageStore(10, 2, capacity=4)
    store.insert(torch.arange(10), torch.arange(10), torch.arange(10), torch.ones(10, 2))
    cap = store.capacity
    store.clear()
    assert store.num_messages() == 0 and store.capacity == cap and store.arena_size == 0


class LargestTensor(TorchDispatchMode):
    """Records the largest numel of any tensor an aten op reads or writes,
    except the store's per-slot buffers when an index_select / index_put reads
    or writes them at given slots (the indices and values are checked)."""

    INDEXED = {aten.index_select.default, aten.index_put.default, aten.index_put_.default,
               aten._index_put_impl_.default}

    def __init__(self, exempt):
        super().__init__()
        self.exempt = {buf.data_ptr() for buf in exempt}
        self.largest, self.op = 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [x for x in tree_flatten((args, kwargs, out))[0] if isinstance(x, torch.Tensor)]
        for x in tensors:
            if func in self.INDEXED and x.data_ptr() in self.exempt:
                continue
            if x.numel() > self.largest:
                self.largest, self.op = x.numel(), func
        return out


def test_insert_and_compaction_never_touch_all_slots():
    num_slots, batch = 1_000_000, 400
    store = MessageStore(num_slots, 1, capacity=64)
    g = torch.Generator().manual_seed(0)
    hot = torch.randint(0, num_slots, (1000,), generator=g)

    def insert(i):
        # half the keys from a few hot nodes, so that compaction frees rows
        key = torch.randint(0, num_slots, (batch,), generator=g)
        key[: batch // 2] = hot[torch.randint(0, hot.numel(), (batch // 2,), generator=g)]
        store.insert(key, torch.randint(0, num_slots, (batch,), generator=g),
                     torch.full((batch,), i), torch.randn(batch, 1, generator=g))

    for i in range(10):  # warm-up: the arena grows to its working size
        insert(i)
    compactions = 0
    with LargestTensor([store.ptr, store.cnt, store.last, store.kept_t]) as mode:
        for i in range(10, 60):
            before = store.arena_size
            insert(i)
            compactions += store.arena_size < before + batch
    live = store.num_messages()
    assert compactions >= 2
    assert live < 30_000
    # O(batch + live rows), never O(num_slots)
    assert mode.largest <= 4 * (live + batch), (mode.largest, mode.op)


def check_against_reference(store, ref, num_nodes, g):
    live = sum(v[0].numel() for v in ref.values())
    assert store.num_messages() == live
    # locate on a random multiset of slots, duplicates and empty slots included
    n_id = torch.randint(0, num_nodes, (int(torch.randint(1, 3 * num_nodes, (1,),
                                                          generator=g)),), generator=g)
    rows, owner = store.locate(n_id)
    pos = 0
    for i, node in enumerate(n_id.tolist()):
        o, tt, m = ref.get(node, (torch.empty(0, dtype=torch.long),) * 2 + (None,))
        num = o.numel()
        assert torch.equal(owner[pos:pos + num], torch.full((num,), i))
        r = rows[pos:pos + num]
        assert torch.equal(store.other[r], o) and torch.equal(store.t[r], tt)
        if num:
            assert torch.equal(store.msg[r], m)
            first_max = int((tt == tt.max()).nonzero()[0, 0])
            assert int(store.last[node]) == int(r[first_max])
            assert int(store.kept_t[node]) == int(tt.max())
        else:
            assert int(store.kept_t[node]) == MessageStore.EMPTY_T
        pos += num
    assert pos == rows.numel()


def test_randomized_compaction_clear_and_reload_match_reference():
    g = torch.Generator().manual_seed(1)
    for trial in range(6):
        num_nodes, dim = int(torch.randint(1, 60, (1,), generator=g)), 3
        store = MessageStore(num_nodes, dim, capacity=int(torch.randint(1, 16, (1,), generator=g)))
        batches, peak = [], 0
        for i in range(60):
            size = int(torch.randint(0, 40, (1,), generator=g))
            key = torch.randint(0, num_nodes, (size,), generator=g)
            other = torch.randint(0, num_nodes, (size,), generator=g)
            t = 10 * i + torch.randint(0, 3, (size,), generator=g).sort().values
            msg = torch.randn(size, dim, generator=g)
            peak = max(peak, store.num_messages() + size)
            store.insert(key, other, t, msg)
            batches.append((key, other, t, msg))
            action = int(torch.randint(0, 10, (1,), generator=g))
            if action == 0:
                store.compact()
            elif action == 1:  # checkpoint round trip into a fresh store
                buf = io.BytesIO()
                torch.save(store.state_dict(), buf)
                buf.seek(0)
                store = MessageStore(num_nodes, dim, capacity=1)
                store.load_state_dict(torch.load(buf))
            elif action == 2 and trial % 2:
                store.clear()
                batches = []
            ref = reference_store(batches, num_nodes)
            check_against_reference(store, ref, num_nodes, g)
        # the arena stays within a constant factor of live rows + batch
        assert store.capacity <= max(16, 4 * peak)


@pytest.mark.cuda
def test_pin_memory_keeps_the_arena_pinned_across_growth_and_reload():
    store = MessageStore(100, 2, capacity=2).pin_memory()
    key = torch.arange(50)
    store.insert(key, key, key, torch.ones(50, 2))  # grows the arena
    assert all(buf.is_pinned() for buf in store.buffers())
    other = MessageStore(100, 2, capacity=1).pin_memory()
    other.load_state_dict(store.state_dict())
    assert all(buf.is_pinned() for buf in other.buffers())
    assert other.num_messages() == 50 and torch.equal(other.kept_t[:50], key)
