"""Exact metrics: the same numbers as scikit-learn."""
import pytest
import torch

from pyg_mspipe.engine.metrics import average_precision, roc_auc

sklearn = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(10))
def test_same_as_sklearn_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(300, generator=g) < 0.4).long()
    score = torch.randint(0, 15, (300,), generator=g).float() / 7  # many ties
    assert average_precision(y, score) == pytest.approx(
        sklearn.average_precision_score(y, score), abs=1e-12)
    assert roc_auc(y, score) == pytest.approx(sklearn.roc_auc_score(y, score), abs=1e-12)


def test_degenerate_and_bad_input():
    assert torch.isnan(torch.tensor(average_precision(torch.zeros(4), torch.rand(4))))
    with pytest.raises(ValueError, match="same length"):
        roc_auc(torch.ones(3), torch.ones(4))
