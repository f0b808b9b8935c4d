"""Link-prediction evaluation: PyG's example numbers with the loader's
negatives, K negatives scored in one pass equal to one positive at a time,
the inductive subset, and the protocol record."""
import copy
import json

import pytest
import torch

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.datasets import load_college_msg
from pyg_mspipe.engine.evaluation import EvalProtocol, evaluate_link_prediction
from pyg_mspipe.engine.metrics import average_precision, roc_auc
from pyg_mspipe.engine.negatives import NegativeSampler
from pyg_mspipe.engine.ranking import mrr_hits
from pyg_mspipe.engine.splits import inductive_split, transductive_split
from pyg_mspipe.engine.training import TGNModel, build_tgn, evaluate, train_epoch

pytestmark = pytest.mark.timeout(120)
BATCH = 50
REF_BATCH, SHORT = 25, 75  # batches of the reference that scores one event at a time


@pytest.fixture(scope="module")
def data():
    return load_college_msg(msg_dim=8)[:1200]


_TRAINED = {}


def trained(split):
    r"""A copy of a small TGN after one training epoch on :obj:`split`, and
    of its neighbour loader (trained once per split)."""
    key = (split.protocol, split.seed)
    if key not in _TRAINED:
        torch.manual_seed(0)
        num_nodes = split.full.num_nodes
        model = build_tgn(num_nodes, 8, memory_dim=16, time_dim=16, embedding_dim=16)
        nl = LastNeighborLoader(num_nodes, 5)
        train_epoch(model, TemporalDataLoader(split.train, 100, 1.0), nl, split.stream)
        _TRAINED[key] = (model, nl)
    return copy.deepcopy(_TRAINED[key])


class Recording(torch.nn.Module):
    r"""The link predictor, keeping every output."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.outputs = []

    def forward(self, z_src, z_dst):
        out = self.inner(z_src, z_dst)
        self.outputs.append(out.detach().view(-1))
        return out

    def split(self, k):
        r"""Positive and negative scores of each call (positives first)."""
        pos, neg = [], []
        for out in self.outputs:
            num = out.numel() // (k + 1)
            pos.append(out[:num])
            neg.append(out[num:].view(num, k))
        return torch.cat(pos), torch.cat(neg)


class RecordingSampler(NegativeSampler):
    r"""A sampler keeping every batch's negatives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn = []

    def sample(self, *args, **kwargs):
        out = super().sample(*args, **kwargs)
        self.drawn.append(out)
        return out


def recorded(model):
    return TGNModel(model.memory, model.gnn, Recording(model.link_pred), model.optimizer)


def test_loader_negatives_give_the_example_numbers(data):
    split = transductive_split(data)
    model, nl = trained(split)
    ap, auc = evaluate(model, TemporalDataLoader(split.val, BATCH, 1.0), nl, split.stream)
    model, nl = trained(split)
    out = evaluate_link_prediction(model, TemporalDataLoader(split.val, BATCH, 1.0), nl,
                                   split.stream)
    assert out == {"ap": ap, "auc": auc}


def one_at_a_time(model, nl, split, drawn):
    r"""TGB's loop: every positive with its negatives in its own forward pass,
    the memory and neighbour loader updated after each batch."""
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    memory.eval()
    gnn.eval()
    link_pred.eval()
    data = split.stream
    assoc = torch.empty(data.num_nodes, dtype=torch.long)
    pos_all, neg_all = [], []
    for batch, neg in zip(TemporalDataLoader(split.val[:SHORT], REF_BATCH, 1.0), drawn):
        for i in range(batch.num_events):
            src = torch.cat([batch.src[i:i + 1], neg.src[i]])
            dst = torch.cat([batch.dst[i:i + 1], neg.dst[i]])
            n_id, edge_index, e_id = nl(torch.cat([src, dst]).unique())
            assoc[n_id] = torch.arange(n_id.size(0))
            z, last_update = memory(n_id)
            z = gnn(z, last_update, edge_index, data.t[e_id], data.msg[e_id])
            out = link_pred(z[assoc[src]], z[assoc[dst]]).view(-1)
            pos_all.append(out[:1])
            neg_all.append(out[1:].view(1, -1))
        memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        nl.insert(batch.src, batch.dst)
    return torch.cat(pos_all), torch.cat(neg_all)


@pytest.mark.parametrize("strategy", ["random", "historical"])
def test_many_negatives_in_one_pass_equal_one_positive_at_a_time(data, strategy):
    split = transductive_split(data)
    model, nl = trained(split)
    sampler = RecordingSampler(strategy, split.full, seed=3)
    rec = recorded(model)
    out = evaluate_link_prediction(rec, TemporalDataLoader(split.val[:SHORT], REF_BATCH, 1.0), nl,
                                   split.stream, sampler=sampler, num_negatives=20,
                                   metrics=("mrr", "hits@1", "hits@10", "ap"))
    pos, neg = rec.link_pred.split(20)
    model, nl = trained(split)
    with torch.no_grad():
        ref_pos, ref_neg = one_at_a_time(model, nl, split, sampler.drawn)
    assert torch.allclose(pos, ref_pos, atol=1e-5) and torch.allclose(neg, ref_neg, atol=1e-5)
    expected = mrr_hits(ref_pos, ref_neg, ks=(1, 10))
    for key in ("mrr", "hits@1", "hits@10"):
        assert out[key] == pytest.approx(expected[key], abs=1e-9)
    # AP per batch of positives with their 20 negatives each.
    aps = []
    for start in range(0, pos.numel(), REF_BATCH):
        p, n = pos[start:start + REF_BATCH], neg[start:start + REF_BATCH].reshape(-1)
        y = torch.cat([torch.ones(p.numel()), torch.zeros(n.numel())])
        aps.append(average_precision(y, torch.cat([p, n]).sigmoid()))
    assert out["ap"] == pytest.approx(sum(aps) / len(aps), abs=1e-7)


def test_inductive_subset_scores_its_events_and_stores_all(data):
    split = inductive_split(data, seed=1)
    assert 0 < split.val_new.num_events < split.val.num_events
    model, nl = trained(split)
    full = recorded(model)
    evaluate_link_prediction(full, TemporalDataLoader(split.val, BATCH, 1.0), nl, split.stream)
    full_memory = model.memory.memory.clone()
    model, nl = trained(split)
    sub = recorded(model)
    out = evaluate_link_prediction(sub, TemporalDataLoader(split.val, BATCH, 1.0), nl,
                                   split.stream, new_nodes=split.new_nodes)
    # Every event went into the memory, as without the subset.
    assert torch.allclose(model.memory.memory, full_memory, atol=1e-6)
    # The subset's scores are those of the same events in the full pass.
    new = torch.zeros(split.full.num_nodes, dtype=torch.bool)
    new[split.new_nodes] = True
    keep = new[split.val.src] | new[split.val.dst]
    pos_full, neg_full = full.link_pred.split(1)
    pos_sub, _ = sub.link_pred.split(1)
    assert torch.allclose(pos_sub, pos_full[keep], atol=1e-5)
    # AP / AUC over groups of BATCH consecutive subset events.
    pos, neg = pos_full[keep], neg_full[keep].view(-1)
    aps, aucs = [], []
    for start in range(0, pos.numel(), BATCH):
        p, n = pos[start:start + BATCH], neg[start:start + BATCH]
        y = torch.cat([torch.ones(p.numel()), torch.zeros(n.numel())])
        aps.append(average_precision(y, torch.cat([p, n]).sigmoid()))
        aucs.append(roc_auc(y, torch.cat([p, n]).sigmoid()))
    assert out["ap"] == pytest.approx(sum(aps) / len(aps), abs=1e-6)
    assert out["auc"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-6)


def test_protocol_record_and_samplers(data):
    split = inductive_split(data, seed=0)
    protocol = EvalProtocol("inductive", "inductive", num_negatives=5,
                            metrics=("ap", "mrr", "hits@3"), seed=10)
    assert json.loads(json.dumps(protocol.to_dict())) == {
        "split": "inductive", "negatives": "inductive", "num_negatives": 5,
        "metrics": ["ap", "mrr", "hits@3"], "seed": 10}
    val = protocol.sampler(split, "val")
    test_new = protocol.sampler(split, "test", new=True)
    assert (val.seed, test_new.seed) == (10, 13)
    assert val.last_observed_time == int(split.train.t[-1])
    assert test_new.last_observed_time == int(split.val.t[-1])
    assert torch.equal(test_new.unique_dst, split.test_new.dst.unique())
    assert EvalProtocol().sampler(split, "val") is None


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="'split'"):
        EvalProtocol(split="semi")
    with pytest.raises(ValueError, match="'negatives'"):
        EvalProtocol(negatives="hard")
    with pytest.raises(ValueError, match="needs a sampler"):
        EvalProtocol(num_negatives=3)
    with pytest.raises(ValueError, match="unknown metric"):
        EvalProtocol(metrics=("ap", "hits@0"))
    split = transductive_split(data)
    model, nl = trained(split)
    with pytest.raises(ValueError, match="whole number of negatives"):
        evaluate_link_prediction(model, TemporalDataLoader(split.val, BATCH, 0.0), nl,
                                 split.stream)


def test_subset_with_dyglib_sampler_is_reproducible(data):
    split = inductive_split(data, seed=1)
    protocol = EvalProtocol("inductive", "historical", num_negatives=3,
                            metrics=("ap", "auc", "mrr"))
    sampler = protocol.sampler(split, "val", new=True)
    results = []
    for _ in range(2):  # the same state and seed: the same numbers
        model, nl = trained(split)
        results.append(evaluate_link_prediction(
            model, TemporalDataLoader(split.val, BATCH, 1.0), nl, split.stream,
            sampler=sampler, num_negatives=3, metrics=protocol.metrics,
            new_nodes=split.new_nodes))
    assert results[0] == results[1]
    assert all(0 <= value <= 1 for value in results[0].values())
