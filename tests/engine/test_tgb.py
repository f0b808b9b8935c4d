"""TGB's one-vs-many evaluation, batched: the metrics are py-tgb's Evaluator
on the same scores, exactly; the scores are those of TGB's example loop (one
positive at a time); padded negatives count as absent."""
import copy

import numpy as np
import pytest
import torch

pytest.importorskip("tgb")

from tgb.linkproppred.evaluate import Evaluator  # noqa: E402
from tgb.linkproppred.negative_sampler import NegativeEdgeSampler  # noqa: E402

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader  # noqa: E402
from pyg_mspipe.datasets import load_tgb  # noqa: E402
from pyg_mspipe.engine.evaluation import evaluate_link_prediction  # noqa: E402
from pyg_mspipe.engine.models import build_model  # noqa: E402
from pyg_mspipe.engine.tgb import TGBNegatives, TGBProtocol, TGBScores, tgb_split  # noqa: E402
from pyg_mspipe.engine.training import train_epoch  # noqa: E402
from tests.tgb_files import college_events, tgb_example_eval, write_tgb_dataset  # noqa: E402

pytestmark = pytest.mark.timeout(120)
NAME = "tgbl-uci"
BATCH = 100


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """TGB-format CollegeMsg (first 2000 events, 20 negatives per positive)
    and a small TGN after one epoch, memory flushed (as the CLI evaluates)."""
    src, dst, t = college_events(2000)
    root = write_tgb_dataset(tmp_path_factory.mktemp("tgb") / "tgbl_uci", src, dst, t)
    dataset = load_tgb(root)
    split = tgb_split(dataset)
    torch.manual_seed(0)
    num_nodes = split.full.num_nodes
    model = build_model("tgn", num_nodes, dataset.data.msg.size(-1), memory_dim=16,
                        time_dim=16, embedding_dim=16)
    nl = LastNeighborLoader(num_nodes, size=5)
    train_epoch(model, TemporalDataLoader(split.train, BATCH, 1.0), nl, split.stream)
    with torch.no_grad():
        model.memory.eval()
    return root, dataset, split, model, nl


def _ours(trained, part="val", metrics=("mrr", "hits@10")):
    root, dataset, split, model, nl = copy.deepcopy(trained)
    protocol = TGBProtocol(dataset, metrics)
    scores = protocol.scores()
    events = split.val if part == "val" else split.test
    result = evaluate_link_prediction(model, TemporalDataLoader(events, BATCH), nl,
                                      split.stream, sampler=protocol.sampler(split, part),
                                      scores=scores)
    return result, scores


def _per_positive(pos, neg, k=10):
    """py-tgb's Evaluator on each positive alone (its row without padding),
    as TGB's examples call it."""
    evaluator = Evaluator(NAME, k_value=k)
    out = [evaluator.eval({"y_pred_pos": pos[i:i + 1], "y_pred_neg": row[~np.isnan(row)],
                           "eval_metric": ["mrr"]}) for i, row in enumerate(neg)]
    return (np.array([o["mrr"] for o in out], dtype=np.float32),
            np.array([o[f"hits@{k}"] for o in out], dtype=np.float32))


@pytest.mark.parametrize("part", ["val", "test"])
def test_batched_mrr_equals_evaluator_exactly(trained, part):
    result, scores = _ours(trained, part, ("mrr", "hits@3", "hits@10"))
    pos, neg = scores.scores()
    num = trained[2].val.num_events if part == "val" else trained[2].test.num_events
    assert pos.shape == (num,) and neg.shape == (num, 20)
    # The Evaluator fed the same scores, one positive at a time (TGB's
    # examples) and all at once: the same figures, to the bit.
    mrr, hits = _per_positive(pos, neg)
    assert result["mrr"] == float(mrr.mean()) == float(
        Evaluator(NAME).eval({"y_pred_pos": pos, "y_pred_neg": neg,
                              "eval_metric": ["mrr"]})["mrr"])
    assert result["hits@10"] == float(hits.mean())
    assert result["hits@3"] == float(_per_positive(pos, neg, k=3)[1].mean())
    # TGB's examples average with torch: the same up to float32 rounding.
    assert abs(result["mrr"] - float(torch.tensor(list(mrr)).mean())) < 1e-6
    assert 0 < result["mrr"] < 1 and list(result) == ["mrr", "hits@3", "hits@10"]


def test_scores_are_those_of_tgbs_example_loop(trained):
    # TGB's tgbl-wiki/tgn.py test(): one forward pass per positive (on the
    # first 120 validation events, to keep it short).
    root, dataset, split, model, nl = copy.deepcopy(trained)
    events = split.val[:120]
    scores = TGBScores(NAME)
    result = evaluate_link_prediction(
        model, TemporalDataLoader(events, BATCH), nl, split.stream,
        sampler=TGBNegatives(events, dataset.val_negatives[:120]), scores=scores)
    root, dataset, split, model, nl = copy.deepcopy(trained)
    sampler = NegativeEdgeSampler(NAME)
    sampler.load_eval_set(str(root / f"{NAME}_val_ns.pkl"), "val")
    ref = []
    ref_mrr = tgb_example_eval(model, TemporalDataLoader(events, BATCH), nl, split.stream,
                               sampler, "val", scores=ref)
    pos, neg = scores.scores()
    ref_pos = np.concatenate([p for p, _ in ref])
    ref_neg = np.stack([n for _, n in ref])
    # Equal up to float rounding of the matrix products (their row count
    # differs); exact ties of never-seen nodes may break either way there.
    np.testing.assert_allclose(pos, ref_pos, rtol=0, atol=1e-5)
    np.testing.assert_allclose(neg, ref_neg, rtol=0, atol=1e-5)
    assert abs(result["mrr"] - ref_mrr) < 1e-3


def test_padding_counts_as_no_negative():
    # Rows of 1..6 negatives, scores with ties; padded with NaN across
    # batches of different widths.
    gen = torch.Generator().manual_seed(0)
    batches, rows = [], []
    for width in (3, 6, 1, 4):
        pos = torch.randint(0, 4, (5,), generator=gen).float()
        neg = torch.randint(0, 4, (5, width), generator=gen).float()
        for i in range(5):
            keep = torch.randint(1, width + 1, (1,), generator=gen).item()
            neg[i, keep:] = float("nan")
            rows.append((pos[i:i + 1].numpy(), neg[i, :keep].numpy()))
        batches.append((pos, neg))
    scores = TGBScores(NAME, ("mrr", "hits@1", "hits@2"))
    for pos, neg in batches:
        scores.add(pos, neg)
    result = scores.result()
    for k in (1, 2):
        evaluator = Evaluator(NAME, k_value=k)
        out = [evaluator.eval({"y_pred_pos": p, "y_pred_neg": n, "eval_metric": ["mrr"]})
               for p, n in rows]
        assert result[f"hits@{k}"] == float(np.array([o[f"hits@{k}"] for o in out]).mean())
        assert result["mrr"] == float(np.array([o["mrr"] for o in out]).mean())
    assert TGBScores(NAME, ("mrr",)).result() == {"mrr": pytest.approx(float("nan"),
                                                                        nan_ok=True)}


def test_padded_negatives_through_the_evaluation(trained):
    # The same negatives with a padding column (-1) give the same metrics.
    root, dataset, split, model, nl = copy.deepcopy(trained)
    negatives = dataset.negatives("val")
    padded = torch.cat([negatives, negatives.new_full((negatives.size(0), 3), -1)], dim=1)
    results = []
    for table in (negatives, padded):
        m, n = copy.deepcopy((model, nl))
        scores = TGBScores(NAME)
        results.append(evaluate_link_prediction(
            m, TemporalDataLoader(split.val, BATCH), n, split.stream,
            sampler=TGBNegatives(split.val, table), scores=scores))
        assert scores.scores()[1].shape[1] == table.size(1)
    assert results[0] == results[1]


def test_negatives_follow_the_events(trained):
    _, dataset, split, _, _ = trained
    sampler = TGBNegatives(split.val, dataset.negatives("val"))
    batch = split.val[:10]
    assert torch.equal(sampler.sample(batch.src, batch.dst, batch.t).dst,
                       dataset.val_negatives[:10])
    with pytest.raises(ValueError, match="events 10..19 are not the ones given"):
        sampler.sample(batch.src, batch.dst, batch.t)
    sampler.reset()
    sampler.sample(batch.src, batch.dst, batch.t)
    with pytest.raises(ValueError, match=rf"must be \[{split.val.num_events}, K\]"):
        TGBNegatives(split.val, dataset.negatives("test")[:5])
    with pytest.raises(ValueError, match="TGB's evaluation gives 'mrr' and 'hits@k', not 'ap'"):
        TGBProtocol(dataset, ("mrr", "ap"))


@pytest.mark.parametrize("name", ["jodie", "dyrep", "apan"])
def test_other_models(trained, name):
    root, dataset, split, _, _ = trained
    torch.manual_seed(0)
    model = build_model(name, split.full.num_nodes, dataset.data.msg.size(-1),
                        memory_dim=8, time_dim=8, embedding_dim=8)
    nl = LastNeighborLoader(split.full.num_nodes, size=5) if model.needs_neighbors else None
    protocol = TGBProtocol(dataset)
    scores = protocol.scores()
    result = evaluate_link_prediction(model, TemporalDataLoader(split.val, BATCH), nl,
                                      split.stream, sampler=protocol.sampler(split, "val"),
                                      scores=scores)
    pos, neg = scores.scores()
    mrr, _ = _per_positive(pos, neg)
    assert result["mrr"] == float(mrr.mean()) and 0 < result["mrr"] <= 1
