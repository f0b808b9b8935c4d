"""TGB's MRR / Hits@k against a direct computation, ties included."""
import pytest
import torch

from pyg_mspipe.engine.ranking import mrr_hits, ranks


def direct(pos, neg, ks):
    rr, hits = [], {k: [] for k in ks}
    for p, row in zip(pos.tolist(), neg.tolist()):
        above = sum(1 for s in row if s > p)
        tied = sum(1 for s in row if s == p)
        rank = 1 + above + tied / 2  # the positive in the middle of its ties
        rr.append(1 / rank)
        for k in ks:
            hits[k].append(1.0 if rank <= k else 0.0)
    out = {"mrr": sum(rr) / len(rr)}
    out.update({f"hits@{k}": sum(v) / len(v) for k, v in hits.items()})
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("num_neg", [1, 7, 40])
def test_same_as_direct_computation_with_ties(seed, num_neg):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, 6, (50,), generator=g).float()  # many ties
    neg = torch.randint(0, 6, (50, num_neg), generator=g).float()
    ks = (1, 3, 10)
    ours, expected = mrr_hits(pos, neg, ks), direct(pos, neg, ks)
    assert ours.keys() == expected.keys()
    for key in expected:
        assert ours[key] == pytest.approx(expected[key], abs=1e-12)


def test_tgb_formula():
    # TGB: 0.5 * (#neg > pos + #neg >= pos) + 1.
    pos = torch.tensor([0.5, 0.5, 2.0])
    neg = torch.tensor([[0.5, 0.5, 0.1], [1.0, 0.6, 0.7], [0.0, 0.1, 0.2]])
    assert ranks(pos, neg).tolist() == [2.0, 4.0, 1.0]
    out = mrr_hits(pos, neg, ks=(1, 2))
    assert out == pytest.approx({"mrr": (1 / 2 + 1 / 4 + 1) / 3, "hits@1": 1 / 3,
                                 "hits@2": 2 / 3})


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        ranks(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="no positive"):
        mrr_hits(torch.zeros(0), torch.zeros(0, 4))
