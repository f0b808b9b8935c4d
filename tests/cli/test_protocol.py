"""The papers' protocol in `pyg-mspipe train`: early stopping (`--patience`)
restores the best epoch's state exactly, and `--runs` are seeded and
reproducible."""
import json
import statistics
from dataclasses import replace

import pytest
import torch

from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.run import setup_run
from pyg_mspipe.cli.train import run_training
from pyg_mspipe.engine.stopping import EarlyStopping, improves

from .common import TINY, run_cli

#: TINY as a TrainConfig, with a learning rate that moves the scores.
CONFIG = TrainConfig(data="synthetic:events=400,nodes=30", batch_size=40, memory_dim=8,
                     embedding_dim=8, time_dim=8, msg_dim=4, lr=0.01, threads=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def quiet(line):
    pass


def state(run) -> dict:
    out = {name: getattr(run.model, name).state_dict()
           for name in ("memory", "gnn", "link_pred")}
    if run.neighbor_loader is not None:
        out["neighbor_loader"] = run.neighbor_loader.state_dict()
    return out


def assert_equal_states(a, b, where="state"):
    """Equal nested states: tensors by torch.equal (dtype and shape too)."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal_states(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_states(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_improves_is_the_rule_of_the_best_epoch():
    assert improves(0.5, None) and improves(0.6, 0.5) and not improves(0.5, 0.5)
    assert not improves(0.4, 0.5) and improves(float("nan"), None)
    assert improves(0.1, float("nan")) and not improves(float("nan"), 0.1)
    stopper = EarlyStopping(2)
    objects = {"x": torch.nn.Linear(1, 1)}
    assert [stopper.step(e, s, objects) for e, s in enumerate([.5, .6, .6, .55, .7, .1, .1],
                                                              1)] == \
        [False, False, False, True, False, False, True]
    with pytest.raises(ValueError, match="positive integer"):
        EarlyStopping(0)


@pytest.mark.parametrize("model, split, pipeline", [
    ("tgn", "transductive", {}),
    ("tgn", "inductive", {"staleness_bound": 2, "schedule": "fixed"}),
    ("dyrep", "inductive", {}),
    ("jodie", "transductive", {}),
])
def test_early_stopping_restores_the_best_epochs_state_exactly(model, split, pipeline):
    """A run with --patience ends with the state of a run stopped at its
    best epoch (parameters, memory with its pending messages, neighbour
    loader), its restored test metrics are that run's (and the best row's),
    and it stopped after `patience` epochs without a better validation AP."""
    config = replace(CONFIG, model=model, split=split, epochs=8, patience=1, **pipeline)
    run = setup_run(config)
    summary = run_training(run, show_progress=False, echo=quiet)
    stopping = summary.early_stopping
    best = summary.best()
    scores = [r.val["ap"] for r in summary.epochs]
    # stopped at the first epoch `patience` epochs after the best so far
    assert stopping["best_epoch"] == best.epoch < len(scores)
    assert stopping["stopped_after"] == len(scores) == best.epoch + 1
    assert all(improves(scores[best.epoch - 1], s) for s in scores[best.epoch:])
    assert len(scores) < 8

    reference = setup_run(replace(config, epochs=best.epoch, patience=None))
    ref_summary = run_training(reference, show_progress=False, echo=quiet)
    assert [r.val for r in ref_summary.epochs] == [r.val for r in summary.epochs[:best.epoch]]
    assert_equal_states(state(run), state(reference))
    restored = {"test": best.test}
    if split == "inductive":
        restored["test_new"] = best.test_new
    assert stopping["restored"] == restored
    assert ref_summary.epochs[-1].test == best.test


def test_patience_in_the_table_summary_and_json(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *TINY, "--lr", "0.01", "--epochs", "8",
                             "--patience", "2", "--json", tmp_path / "run.json")
    assert code == 0, err
    summary = json.loads((tmp_path / "run.json").read_text())
    stopping = summary["early_stopping"]
    epochs = summary["epochs"]
    assert summary["config"]["patience"] == 2
    assert stopping["stopped_after"] == len(epochs) == stopping["best_epoch"] + 2
    assert stopping["restored"] == {"test": summary["best"]["test"]}
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:1 + len(epochs)]] == \
        [str(e["epoch"]) for e in epochs]  # every epoch's row, tested as it ran
    assert lines[1 + len(epochs)] == (f"early stopping (patience 2): stopped after epoch "
                                      f"{len(epochs)}; best epoch {stopping['best_epoch']} "
                                      "restored and tested again")


def test_resume_keeps_the_early_stopping_state(capsys, tmp_path):
    """Interrupted after its best epoch, resumed: the same epochs, the same
    stop, the same restored state (from the checkpoint's copy)."""
    argv = [*TINY, "--lr", "0.01", "--patience", "2", "-q"]
    assert run_cli(capsys, "train", *argv, "--epochs", "8", "--json",
                   tmp_path / "ref.json")[0] == 0
    ref = json.loads((tmp_path / "ref.json").read_text())
    best, stopped = ref["early_stopping"]["best_epoch"], ref["early_stopping"]["stopped_after"]
    ckpt = tmp_path / "ckpt"
    assert run_cli(capsys, "train", *argv, "--epochs", best + 1, "--checkpoint-dir",
                   ckpt)[0] == 0
    code, out, err = run_cli(capsys, "train", *argv, "--epochs", "8", "--resume",
                             "--checkpoint-dir", ckpt, "--json", tmp_path / "run.json")
    assert code == 0, err
    run = json.loads((tmp_path / "run.json").read_text())
    assert [(e["loss"], e["val"], e["test"]) for e in run["epochs"]] == \
        [(e["loss"], e["val"], e["test"]) for e in ref["epochs"]]
    assert run["early_stopping"] == ref["early_stopping"]
    # a run that stopped cannot be resumed
    code, out, err = run_cli(capsys, "train", *argv, "--epochs", "8", "--resume",
                             "--checkpoint-dir", ckpt)
    assert code == 2 and out == ""
    assert err == (f"pyg-mspipe: error: --resume: the checkpoint's run stopped early after "
                   f"epoch {stopped} (--patience 2)\n")
    code, _, err = run_cli(capsys, "train", *TINY, "--lr", "0.01", "--epochs", "8",
                           "--resume", "--checkpoint-dir", ckpt)
    assert code == 2 and "written with patience=2, this run has patience=None" in err


def numbers(summary: dict) -> list:
    return [(e["loss"], e["val"], e["test"]) for e in summary["epochs"]]


def test_runs_are_seeded_reproducible_and_aggregated(capsys, tmp_path):
    argv = ["train", *TINY, "--epochs", "2", "--runs", "3", "--seed", "5", "-q"]
    for name in ("a.json", "b.json"):
        code, out, err = run_cli(capsys, *argv, "--json", tmp_path / name)
        assert code == 0, err
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert [r["seed"] for r in a["runs"]] == [5, 6, 7]
    assert [numbers(r) for r in a["runs"]] == [numbers(r) for r in b["runs"]]
    assert a["aggregate"] == b["aggregate"]
    # run k is the single run with seed 5 + k
    code, _, _ = run_cli(capsys, "train", *TINY, "--epochs", "2", "--seed", "6", "-q",
                         "--json", tmp_path / "single.json")
    assert code == 0
    single = json.loads((tmp_path / "single.json").read_text())
    assert numbers(single) == numbers(a["runs"][1])
    assert single["best"] == a["runs"][1]["best"]
    # mean and sample standard deviation of the best epochs' metrics
    values = [r["best"]["test"]["ap"] for r in a["runs"]]
    test_ap = a["aggregate"]["test"]["ap"]
    assert test_ap["values"] == values
    assert test_ap["mean"] == pytest.approx(statistics.fmean(values))
    assert test_ap["std"] == pytest.approx(float(torch.tensor(values).std()))
    lines = out.splitlines()
    assert lines[-3].startswith("3 runs (seeds 5, 6, 7): mean ± std (ddof=1) of each run's "
                                "best val epoch (ap)")
    assert lines[-2].startswith("  val ap ")
    assert lines[-1].startswith(f"  test ap {test_ap['mean']:.4f} ± {test_ap['std']:.4f}  auc ")


def test_runs_resume_each_from_its_own_checkpoint(capsys, tmp_path):
    argv = [*TINY, "--runs", "2", "--patience", "1", "--lr", "0.01", "-q"]
    assert run_cli(capsys, "train", *argv, "--epochs", "3", "--json",
                   tmp_path / "ref.json")[0] == 0
    ckpt = tmp_path / "ckpt"
    assert run_cli(capsys, "train", *argv, "--epochs", "1", "--checkpoint-dir", ckpt)[0] == 0
    assert sorted(p.name for p in ckpt.iterdir()) == ["run-1", "run-2"]
    (ckpt / "run-2" / "checkpoint.pt").unlink()  # as if killed before run 2 began
    code, out, err = run_cli(capsys, "train", *argv, "--epochs", "3", "--resume",
                             "--checkpoint-dir", ckpt, "--json", tmp_path / "run.json")
    assert code == 0, err
    ref, run = (json.loads((tmp_path / n).read_text()) for n in ("ref.json", "run.json"))
    assert [numbers(r) for r in run["runs"]] == [numbers(r) for r in ref["runs"]]
    assert [r["early_stopping"] for r in run["runs"]] == \
        [r["early_stopping"] for r in ref["runs"]]
    assert [r["resumed"] for r in run["runs"]] == [True, False]
    # finished runs are reported from their checkpoints
    code, out2, err = run_cli(capsys, "train", *argv, "--epochs", "3", "--resume",
                              "--checkpoint-dir", ckpt, "--json", tmp_path / "again.json")
    assert code == 0, err
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["aggregate"] == ref["aggregate"]


def batches_of(loader) -> list:
    return [(b.src.clone(), b.neg_dst.clone(), b.n_id.clone()) for b in loader]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_dyglib_training_negatives_are_its_random_samplers(prefetch):
    """--train-negatives random: each batch's negative destinations are the
    draws of DyGLib's random NegativeEdgeSampler on the training events
    (engine.negatives.NegativeSampler, the same generator state): uniform
    over the distinct training destinations (DyGLib's np.unique), sources
    the positives'."""
    import numpy as np

    from pyg_mspipe import TemporalDataLoader
    from pyg_mspipe.cli.run import train_candidates
    from pyg_mspipe.engine.negatives import NegativeSampler

    run = setup_run(replace(CONFIG, split="inductive", train_negatives="random"))
    train = run.split.train
    candidates = train_candidates(run.config, run.split)
    assert candidates.tolist() == np.unique(train.dst.numpy()).tolist()
    loader = TemporalDataLoader(train, batch_size=40, neg_sampling_ratio=1.0,
                                prefetch=prefetch, neg_dst_candidates=candidates,
                                generator=torch.Generator().manual_seed(9))
    reference = NegativeSampler("random", train, seed=9)
    for batch in loader:
        neg = reference.sample(batch.src, batch.dst, batch.t)
        assert torch.equal(neg.dst.view(-1), batch.neg_dst)
        assert torch.equal(neg.src.view(-1), batch.src)
        assert torch.equal(batch.n_id, torch.cat([batch.src, batch.dst,
                                                  batch.neg_dst]).unique())


def test_train_negatives_option_reaches_the_training_loader(capsys, tmp_path):
    """On the inductive split PyG's negatives draw the nodes kept out of
    training (their ids lie in [min(dst), max(dst)]); DyGLib's never do."""
    drawn = {}
    for name in ("pyg", "random"):
        run = setup_run(replace(CONFIG, split="inductive", train_negatives=name))
        torch.manual_seed(0)
        drawn[name] = torch.cat([neg for _, neg, _ in batches_of(run.train_loader)])
    train_dst = run.split.train.dst.unique()
    masked = run.split.masked_nodes
    assert masked.numel() > 0
    assert torch.isin(drawn["random"], train_dst).all()
    assert torch.isin(drawn["pyg"], masked).any()
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--train-negatives",
                           "random", "-q", "--json", tmp_path / "run.json")
    assert code == 0, err
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["config"]["train_negatives"] == "random"


def test_bad_negative_candidates_are_refused():
    from pyg_mspipe import TemporalDataLoader

    data = setup_run(CONFIG).split.train
    for bad, error, match in [(torch.tensor([], dtype=torch.long), ValueError, "empty"),
                              (torch.tensor([[1]]), ValueError, "one-dimensional"),
                              (torch.tensor([0.5]), TypeError, "integer"),
                              (torch.tensor([-1]), ValueError, "negative")]:
        with pytest.raises(error, match=match):
            TemporalDataLoader(data, 10, 1.0, neg_dst_candidates=bad)


def test_zero_edge_features_option(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--edge-features", "zeros",
                           "-q", "--json", tmp_path / "run.json")
    assert code == 0, err
    assert json.loads((tmp_path / "run.json").read_text())["config"]["edge_features"] == "zeros"
    run = setup_run(replace(CONFIG, edge_features="zeros"))
    assert run.data.msg.shape == (400, 4) and not run.data.msg.any()
