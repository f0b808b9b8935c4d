"""Staleness mitigation: the similarity index and the correction, against
plain loops."""
import pytest
import torch

from pyg_mspipe.pipeline import StalenessMitigation
from pyg_mspipe.pipeline.mitigation import similar_nodes

from .common import make_data, train

pytestmark = pytest.mark.timeout(120)


def test_similar_nodes_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    memory = torch.randn(37, 5, generator=g)
    got = similar_nodes(memory, k=4, chunk_size=8)
    unit = memory / memory.norm(dim=-1, keepdim=True)
    for v in range(37):
        sims = [(float(unit[v] @ unit[u]), u) for u in range(37) if u != v]
        expected = [u for _, u in sorted(sims, reverse=True)[:4]]
        assert got[v].tolist() == expected


def test_correction_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    num, dim = 30, 4
    memory = torch.randn(num, dim, generator=g)
    last_update = torch.randint(0, 100, (num,), generator=g)
    n_id = torch.randperm(num, generator=g)[:20]
    t_now = torch.tensor(120)
    mit = StalenessMitigation(lam=0.8, k=3, quantile=0.7)
    h = memory[n_id].clone()
    mask = mit(h, n_id, memory, last_update, t_now)
    nb = similar_nodes(memory, 3)
    dt = (t_now - last_update[n_id]).double()
    threshold = torch.quantile(dt, 0.7)
    expected = memory[n_id].clone()
    corrected = []
    for row, v in enumerate(n_id.tolist()):
        if dt[row] < threshold or dt[row] == 0:
            continue
        fresh = [u for u in nb[v].tolist() if last_update[u] > last_update[v]]
        if fresh:
            expected[row] = 0.8 * memory[v] + 0.2 * memory[fresh].mean(0)
            corrected.append(row)
    assert corrected, "the example must correct something"
    torch.testing.assert_close(h, expected)
    assert mask.nonzero().view(-1).tolist() == corrected


def test_bad_parameters():
    for kwargs in (dict(lam=1.5), dict(k=0), dict(quantile=-0.1), dict(refresh_every=0)):
        with pytest.raises(ValueError):
            StalenessMitigation(**kwargs)


def test_mitigation_changes_reads_not_writes():
    """With mitigation the reads differ, but write-backs recompute corrected
    rows: frozen parameters still give the sequential memory."""
    data = make_data()
    ref = train(data, lr=0.0)
    mit = StalenessMitigation(quantile=0.5, refresh_every=5)
    got = train(data, lr=0.0, staleness_bound=2, schedule="fixed", mitigation=mit)
    assert mit.corrected > 0
    assert got[0] != ref[0]
    torch.testing.assert_close(got[1], ref[1], atol=1e-6, rtol=0)
    assert torch.equal(got[2], ref[2])
