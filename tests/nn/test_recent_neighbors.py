import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.nn.recent_neighbors import RecentNeighborSampler


def _stream(num_events=300, num_nodes=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_events,), generator=g)
    dst = torch.randint(0, num_nodes, (num_events,), generator=g)
    # Many equal timestamps, so ties matter.
    t = torch.randint(0, num_events // 4, (num_events,), generator=g).sort().values
    return TemporalData(src=src, dst=dst, t=t, msg=torch.zeros(num_events, 1))


def _reference(data, node, t, size):
    # DyGLib's NeighborSampler, 'recent': per node a time-sorted (stable)
    # list of (neighbour, event, time), both directions, then the last
    # `size` strictly before t, right-aligned.
    adj = [[] for _ in range(int(data.num_nodes))]
    for e, (s, d, te) in enumerate(zip(data.src.tolist(), data.dst.tolist(), data.t.tolist())):
        adj[s].append((d, e, te))
        adj[d].append((s, e, te))
    adj = [sorted(a, key=lambda x: x[2]) for a in adj]
    nbr = torch.zeros(node.numel(), size, dtype=torch.long)
    eid = torch.zeros_like(nbr)
    mask = torch.zeros_like(nbr, dtype=torch.bool)
    for i, (v, tq) in enumerate(zip(node.tolist(), t.tolist())):
        before = [x for x in adj[v] if x[2] < tq][-size:]
        for j, (n, e, _) in enumerate(before):
            col = size - len(before) + j
            nbr[i, col], eid[i, col], mask[i, col] = n, e, True
    return nbr, eid, mask


@pytest.mark.parametrize("size", [1, 3, 10])
def test_dense_equals_reference(size):
    data = _stream()
    sampler = RecentNeighborSampler(data, size)
    g = torch.Generator().manual_seed(1)
    node = torch.randint(0, 20, (200,), generator=g)
    t = torch.cat([data.t[torch.randint(0, 300, (100,), generator=g)],
                   torch.randint(-5, 90, (100,), generator=g)])
    nb = sampler.dense(node, t)
    nbr, eid, mask = _reference(data, node, t, size)
    assert torch.equal(nb.mask, mask)
    assert torch.equal(nb.nbr, nbr)
    assert torch.equal(nb.e_id, eid)
    assert torch.equal(nb.t[mask], data.t[eid[mask]])
    assert (nb.t[mask] < t.unsqueeze(-1).expand_as(mask)[mask]).all()


def test_pyg_shape():
    data = _stream()
    sampler = RecentNeighborSampler(data, 4)
    node = torch.tensor([3, 3, 7, 0])
    t = torch.tensor([10, 60, 60, 0])
    nb = sampler.dense(node, t)
    n_id, edge_index, e_id = sampler(node, t)
    assert torch.equal(n_id, torch.cat([node, nb.nbr[nb.mask]]).unique())
    assert torch.equal(e_id, nb.e_id[nb.mask])
    for q in range(node.numel()):
        cols = edge_index[1] == q
        assert torch.equal(n_id[edge_index[0, cols]], nb.nbr[q][nb.mask[q]])
    assert not (edge_index[1] == 3).any()  # time 0: nothing before


def test_errors():
    data = _stream()
    with pytest.raises(ValueError, match="size"):
        RecentNeighborSampler(data, 0)
    sampler = RecentNeighborSampler(data, 2)
    with pytest.raises(ValueError, match="node"):
        sampler.dense(torch.tensor([25]), torch.tensor([1]))
    with pytest.raises(ValueError, match="'t'"):
        sampler.dense(torch.tensor([1, 2]), torch.tensor([1]))
