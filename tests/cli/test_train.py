"""`pyg-mspipe train` end to end on tiny data: the table and summary, the
JSON summary, the plots, and the same numbers as PyG's example loop run by
hand on the same parts."""
import json

import pytest
import torch

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch

from .common import TINY, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_prints_progress_table_summary_and_writes_json_and_plots(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "2", "--json",
                             tmp_path / "run.json", "--plots", tmp_path / "plots")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["epoch", "loss", "train"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert "epoch 1/2" in err and "ev/s" in err  # the progress bar, on stderr
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["format"] == "pyg-mspipe-train/1"
    assert summary["config"]["epochs"] == 2 and summary["config"]["batch_size"] == 40
    assert summary["data"]["num_events"] == 400 and summary["data"]["msg_dim"] == 4
    assert summary["eval_protocol"] == {"split": "transductive", "negatives": "pyg",
                                        "num_negatives": 1, "metrics": ["ap", "auc"], "seed": 0}
    assert summary["data"]["split"]["num_train"] + summary["data"]["split"]["num_val"] + \
        summary["data"]["split"]["num_test"] == 400
    epochs = summary["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        assert 0 <= e["val"]["ap"] <= 1 and 0 <= e["test"]["auc"] <= 1
        assert e["train_seconds"] > 0 and e["pipeline"] is None
    best = max(epochs, key=lambda e: e["val"]["ap"])
    assert summary["best"] == {"epoch": best["epoch"], "selected_by": "val ap", "val": best["val"],
                               "test": best["test"]}
    assert f"best val epoch {best['epoch']} " in out
    assert f"test ap {best['test']['ap']:.4f}" in out
    for name in ("loss.png", "ap.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG
    assert not (tmp_path / "plots" / "timeline.png").exists()  # not pipelined


def test_quiet_prints_only_the_summary(capsys):
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "-q")
    assert code == 0
    assert err == ""
    assert out.splitlines()[0].startswith("best val epoch 1 ")


def test_pipelined_run_reports_staleness_and_draws_the_timeline(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--staleness-bound",
                             "1", "--schedule", "fixed", "--json", tmp_path / "run.json",
                             "--plots", tmp_path, "-v")
    assert code == 0, err
    pipeline = json.loads((tmp_path / "run.json").read_text())["pipeline"]
    assert pipeline["staleness_bound"] == 1 and pipeline["mode"] == "pipelined"
    assert pipeline["iterations"] == 8 and pipeline["max_staleness"] <= 1
    assert "pipeline (pipelined): bound 1" in out and "pipeline: PipelineStats(" in out
    assert "staleness=" in err  # the progress bar's realised staleness
    assert (tmp_path / "timeline.png").read_bytes()[:8] == PNG


def test_numbers_equal_pyg_example_loop_on_the_same_parts(capsys, tmp_path):
    """The command runs PyG's example loop: by hand, with the same seed and
    parts, the per-epoch loss and metrics are the same."""
    code, _, _ = run_cli(capsys, "train", *TINY, "--epochs", "2", "--seed", "7", "-q",
                         "--json", tmp_path / "run.json")
    assert code == 0
    epochs = json.loads((tmp_path / "run.json").read_text())["epochs"]

    torch.manual_seed(7)
    data = resolve_data("synthetic:events=400,nodes=30", msg_dim=4)
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    model = build_tgn(data.num_nodes, 4, memory_dim=8, time_dim=8, embedding_dim=8)
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    train_loader = TemporalDataLoader(train_data, batch_size=40, neg_sampling_ratio=1.0,
                                      memory=model.memory, neighbor_loader=neighbor_loader)
    val_loader, test_loader = (TemporalDataLoader(d, batch_size=40, neg_sampling_ratio=1.0)
                               for d in (val_data, test_data))
    for record in epochs:
        loss = train_epoch(model, train_loader, neighbor_loader, data)
        val = evaluate(model, val_loader, neighbor_loader, data)
        test = evaluate(model, test_loader, neighbor_loader, data)
        assert record["loss"] == pytest.approx(loss, rel=1e-12)
        assert (record["val"]["ap"], record["val"]["auc"]) == val
        assert (record["test"]["ap"], record["test"]["auc"]) == test


def test_resume_at_an_epoch_end_continues_to_the_same_numbers(capsys, tmp_path):
    def metrics(path):
        return [(e["loss"], e["val"], e["test"])
                for e in json.loads(path.read_text())["epochs"]]

    assert run_cli(capsys, "train", *TINY, "--epochs", "2", "-q", "--json",
                   tmp_path / "ref.json")[0] == 0
    ckpt = tmp_path / "ckpt"
    assert run_cli(capsys, "train", *TINY, "--epochs", "1", "-q", "--checkpoint-dir",
                   ckpt)[0] == 0
    code, out, _ = run_cli(capsys, "train", *TINY, "--epochs", "2", "--resume",
                           "--checkpoint-dir", ckpt, "--json", tmp_path / "run.json")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["1", "2"]
    assert "(resumed)" in out
    assert metrics(tmp_path / "run.json") == metrics(tmp_path / "ref.json")


def test_inductive_protocol_scores_new_nodes_from_the_same_state(capsys, tmp_path):
    """--split inductive: the new-node pass starts from the state before the
    all-events pass and leaves it as that pass does, so the all-events
    numbers equal a run by hand without the new-node passes."""
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run
    from pyg_mspipe.engine.evaluation import evaluate_link_prediction

    argv = ["--split", "inductive", "--negatives", "historical", "--num-negatives", "3",
            "--metrics", "mrr,ap,hits@3"]
    code, out, _ = run_cli(capsys, "train", *TINY, "--epochs", "2", *argv, "--json",
                           tmp_path / "run.json")
    assert code == 0
    assert out.splitlines()[0].split()[5:8] == ["val", "mrr", "val"]
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["eval_protocol"] == {"split": "inductive", "negatives": "historical",
                                        "num_negatives": 3, "metrics": ["mrr", "ap", "hits@3"],
                                        "seed": 0}
    assert summary["best"]["selected_by"] == "val mrr"
    assert summary["data"]["split"]["num_new_nodes"] > 0
    for e in summary["epochs"]:
        assert set(e["val_new"]) == set(e["test_new"]) == {"mrr", "ap", "hits@3"}

    run = setup_run(TrainConfig(data="synthetic:events=400,nodes=30", batch_size=40,
                                memory_dim=8, embedding_dim=8, time_dim=8, msg_dim=4,
                                split="inductive", negatives="historical", num_negatives=3,
                                metrics=("mrr", "ap", "hits@3")))
    kwargs = dict(num_negatives=3, metrics=("mrr", "ap", "hits@3"))
    for record in summary["epochs"]:
        train_epoch(run.model, run.train_loader, run.neighbor_loader, run.split.stream)
        for part, loader in (("val", run.val_loader), ("test", run.test_loader)):
            scores = evaluate_link_prediction(run.model, loader, run.neighbor_loader,
                                              run.split.stream,
                                              sampler=run.protocol.sampler(run.split, part),
                                              **kwargs)
            assert record[part] == scores


def test_other_models_train_with_the_example_protocol(capsys):
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--model", "jodie", "-q")
    assert code == 0, err
    assert out.startswith("best val epoch 1 (val ap ")


@pytest.mark.parametrize("model", ["jodie", "dyrep", "apan"])
def test_other_models_take_every_protocol(capsys, tmp_path, model):
    """JODIE, DyRep and APAN run the inductive protocol with ranking metrics
    too: the all-events numbers equal evaluate_link_prediction run by hand on
    the same parts (the new-node pass, from a snapshot, changes nothing), and
    the new-node subset is scored."""
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run
    from pyg_mspipe.engine.evaluation import evaluate_link_prediction

    argv = ["--model", model, "--split", "inductive", "--negatives", "random",
            "--num-negatives", "3", "--metrics", "mrr,ap"]
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", *argv, "--json",
                             tmp_path / "run.json")
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert header.split()[-5:] == ["test_new", "mrr", "test_new", "ap", "staleness"]
    assert len(row.split()) == 4 + 2 * 4 + 1  # epoch to events/s, 2 metrics x 4 parts, staleness
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["config"]["model"] == model
    (record,) = summary["epochs"]
    assert set(record["val_new"]) == set(record["test_new"]) == {"mrr", "ap"}

    run = setup_run(TrainConfig(data="synthetic:events=400,nodes=30", batch_size=40,
                                memory_dim=8, embedding_dim=8, time_dim=8, msg_dim=4,
                                model=model, split="inductive", negatives="random",
                                num_negatives=3, metrics=("mrr", "ap")))
    train_epoch(run.model, run.train_loader, run.neighbor_loader, run.split.stream)
    for part, loader in (("val", run.val_loader), ("test", run.test_loader)):
        scores = evaluate_link_prediction(run.model, loader, run.neighbor_loader,
                                          run.split.stream,
                                          sampler=run.protocol.sampler(run.split, part),
                                          num_negatives=3, metrics=("mrr", "ap"))
        assert record[part] == scores
