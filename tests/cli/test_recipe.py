"""`pyg-mspipe train --recipe dyglib` (DyGLib's TGN recipe) and its engine."""
import json

import pytest
import torch

from pyg_mspipe import TemporalDataLoader
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.recipes import (
    build_event_tgn,
    evaluate_events,
    event_train_steps,
)
from pyg_mspipe.nn.recent_neighbors import RecentNeighborSampler

from .common import TINY, run_cli


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _parts(seed=0, **options):
    data = resolve_data("synthetic:events=300,nodes=20", msg_dim=4)
    torch.manual_seed(seed)
    sampler = RecentNeighborSampler(data, 5)
    model = build_event_tgn(data.num_nodes, 4, sampler, memory_dim=8, time_dim=8,
                            embedding_dim=8, **options)
    loader = TemporalDataLoader(data, batch_size=50, neg_sampling_ratio=1.0,
                                generator=torch.Generator().manual_seed(seed))
    return data, model, loader


def test_training_is_seeded_and_learns_and_evaluates():
    losses = []
    for _ in range(2):
        data, model, loader = _parts()
        run = [loss for _ in range(3)
               for loss, _ in event_train_steps(model, loader, data)]
        losses.append(run)
    assert losses[0] == losses[1]  # seeded: the same numbers
    assert all(torch.isfinite(torch.tensor(losses[0])))
    assert sum(losses[0][-6:]) < sum(losses[0][:6])  # it learns the stream
    model.memory.reset_state()
    scores = evaluate_events(model, loader, data, metrics=("ap", "auc", "mrr"))
    assert set(scores) == {"ap", "auc", "mrr"} and 0 <= scores["ap"] <= 1


def test_embedding_reads_each_events_own_neighbours():
    data, model, _ = _parts()
    for module in model.modules():
        module.eval()
    # Node 0 at two times of one batch: different neighbourhoods, different
    # embeddings; at two times with the same neighbourhood, equal ones.
    node = data.src[100].repeat(3)
    t_later = data.t[data.src == node[0]][-1] + 1
    t = torch.stack([data.t[100], t_later, t_later])
    with torch.no_grad():
        h = model.embed(data, node, t)
    assert not torch.allclose(h[0], h[1])
    torch.testing.assert_close(h[1], h[2])


def test_bad_options():
    data = resolve_data("synthetic:events=50,nodes=10", msg_dim=4)
    with pytest.raises(ValueError, match="query_time"):
        build_event_tgn(10, 4, RecentNeighborSampler(data, 2), query_time="never")


def test_cli_recipe_dyglib_trains_and_reports(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *TINY, "--recipe", "dyglib", "--epochs", "2",
                             "--negatives", "random", "--json", tmp_path / "run.json", "-q")
    assert code == 0, err
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["config"]["recipe"] == "dyglib"
    assert len(summary["epochs"]) == 2
    assert 0 < summary["epochs"][1]["test"]["ap"] <= 1
    # inductive split: the new-node subset too
    code, out, err = run_cli(capsys, "train", *TINY, "--recipe", "dyglib", "--epochs", "1",
                             "--split", "inductive", "--negatives", "random", "-q")
    assert code == 0, err


@pytest.mark.parametrize("extra, message", [
    (["--model", "apan"], "--model tgn, jodie, dyrep (got apan)"),
])
def test_cli_recipe_dyglib_refuses_what_it_does_not_run(capsys, extra, message):
    code, out, err = run_cli(capsys, "train", *TINY, "--recipe", "dyglib", *extra)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_dyglib_recipe_pads_featureless_data_with_zeros_as_dyglib():
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.datasets import DataFormatError, load_dataset

    assert TrainConfig(recipe="dyglib").data_features == "zeros"
    assert TrainConfig(recipe="pyg").data_features == "random"
    assert TrainConfig(recipe="dyglib", edge_features="random").data_features == "random"
    zeros = load_dataset("college", features="zeros")
    assert zeros.msg.shape == (59835, 16) and not zeros.msg.any()
    assert load_dataset("college").msg.std() > 0.5
    with pytest.raises(DataFormatError, match="features"):
        load_dataset("college", features="ones")


def test_dyglib_recipe_draws_dyglibs_new_nodes():
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run

    assert TrainConfig(recipe="dyglib").split_draw == "dyglib"
    assert TrainConfig(recipe="pyg").split_draw == "torch"
    assert TrainConfig(recipe="dyglib", new_node_draw="torch").split_draw == "torch"
    run = setup_run(TrainConfig(recipe="dyglib", split="inductive", negatives="random",
                                epochs=1, msg_dim=4))
    assert run.split.train.num_events == 34352  # DyGLib's training events on uci
    run = setup_run(TrainConfig(recipe="dyglib", split="inductive", negatives="random",
                                epochs=1, msg_dim=4, new_node_draw="torch"))
    assert run.split.train.num_events != 34352


def test_dyglib_recipe_evaluates_with_every_events_neighbours():
    # DyGLib trains on an index of the training events and evaluates with
    # one of the whole stream (full_neighbor_sampler): a node kept out of
    # training has no neighbour in training, but its training-period
    # events are its neighbours in evaluation.
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run

    run = setup_run(TrainConfig(recipe="dyglib", split="inductive", negatives="random",
                                epochs=1, msg_dim=4))
    split = run.split
    node = split.masked_nodes[:20]
    t = torch.full_like(node, int(split.val.t[0]))
    assert not run.model.sampler.dense(node, t).mask.any()
    full = run.eval_sampler.dense(node, t)
    assert full.mask.any()
    e_id = full.e_id[full.mask]
    assert (split.full.t[e_id] < t[0]).all()
    # the transductive split: one index, the model's
    run = setup_run(TrainConfig(recipe="dyglib", negatives="random", epochs=1, msg_dim=4))
    assert run.eval_sampler is None and run.split.full is run.split.stream


def test_dyglib_recipe_defaults_are_dyglibs_sizes_and_training_negatives(capsys, tmp_path):
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run, train_candidates

    dyglib, pyg = TrainConfig(recipe="dyglib"), TrainConfig(recipe="pyg")
    assert (dyglib.memory_dim, dyglib.embedding_dim, dyglib.train_negatives) == \
        (172, 172, "random")
    assert (pyg.memory_dim, pyg.embedding_dim, pyg.train_negatives) == (100, 100, "pyg")
    given = TrainConfig(recipe="dyglib", memory_dim=8, embedding_dim=12, train_negatives="pyg")
    assert (given.memory_dim, given.embedding_dim, given.train_negatives) == (8, 12, "pyg")
    run = setup_run(TrainConfig(recipe="dyglib", split="inductive", negatives="random"))
    assert run.model.memory.memory.size(-1) == 172
    assert run.model.link_pred.lin_final.in_features == 172
    assert torch.equal(train_candidates(run.config, run.split), run.split.train.dst.unique())
    sizes_not_given = ["--data", "synthetic:events=400,nodes=30", "--batch-size", "40",
                       "--time-dim", "8", "--msg-dim", "4"]
    code, out, err = run_cli(capsys, "train", *sizes_not_given, "--recipe", "dyglib",
                             "--epochs", "1", "--negatives", "random",
                             "--json", tmp_path / "run.json", "-q")
    assert code == 0, err
    config = json.loads((tmp_path / "run.json").read_text())["config"]
    assert (config["memory_dim"], config["embedding_dim"], config["train_negatives"]) == \
        (172, 172, "random")


def _figures(summary: dict) -> dict:
    # What a run reports, less its wall-clock times (and where it was written).
    clock = {"train_seconds", "events_per_second", "eval_seconds", "total_seconds",
             "json_path"}
    if isinstance(summary, dict):
        return {k: _figures(v) for k, v in summary.items() if k not in clock}
    if isinstance(summary, list):
        return [_figures(v) for v in summary]
    return summary


@pytest.mark.parametrize("model", ["jodie", "dyrep"])
def test_cli_recipe_dyglib_jodie_dyrep_runs_seeded(capsys, tmp_path, model):
    args = ["train", "--data", "synthetic:events=400,nodes=30", "--batch-size", "40",
            "--time-dim", "8", "--msg-dim", "4", "--model", model, "--recipe", "dyglib",
            "--epochs", "2", "--runs", "2", "--seed", "3", "--split", "inductive",
            "--negatives", "random", "-q"]
    summaries = []
    for name in ("a", "b", "c"):
        seed = ["--seed", "4"] if name == "c" else []
        code, out, err = run_cli(capsys, *args, *seed, "--json", tmp_path / f"{name}.json")
        assert code == 0, err
        summaries.append(json.loads((tmp_path / f"{name}.json").read_text()))
    a, b, c = summaries
    assert _figures(a) == _figures(b)  # same seed, same figures
    assert _figures(a) != _figures(c)
    runs = a["runs"]
    assert [r["seed"] for r in runs] == [3, 4]
    assert _figures(runs[1]["epochs"]) == _figures(c["runs"][0]["epochs"])
    config = a["config"]
    assert (config["model"], config["recipe"], config["memory_dim"], config["embedding_dim"],
            config["train_negatives"]) == (model, "dyglib", 172, 172, "random")
    for run in runs:
        assert all(0 < e[part]["ap"] <= 1 for e in run["epochs"]
                   for part in ("val", "test", "val_new", "test_new"))


@pytest.mark.parametrize("model", ["jodie", "dyrep"])
def test_dyglib_recipe_for_jodie_dyrep_is_its_defaults_and_time_init(model):
    # --recipe dyglib for JODIE and DyRep is the engine's model with the
    # documented defaults (sizes 172, DyGLib's training negatives, new-node
    # draw and zero features) and DyGLib's time encoder initialisation: the
    # same run as --recipe pyg given those options, but for the encoder.
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run, train_candidates
    from pyg_mspipe.engine.models import MODELS

    options = dict(model=model, split="inductive", negatives="random", seed=5)
    recipe = setup_run(TrainConfig(recipe="dyglib", **options))
    plain = setup_run(TrainConfig(recipe="pyg", memory_dim=172, embedding_dim=172,
                                  train_negatives="random", new_node_draw="dyglib",
                                  edge_features="zeros", **options))
    assert isinstance(recipe.model, MODELS[model]) and not recipe.per_event
    assert recipe.split.train.num_events == 34352  # DyGLib's training events on uci
    assert not recipe.data.msg.any() and plain.data.msg.equal(recipe.data.msg)
    assert recipe.model.memory.memory.size(-1) == 172
    assert recipe.model.link_pred.lin_final.in_features == 172
    assert torch.equal(train_candidates(recipe.config, recipe.split),
                       recipe.split.train.dst.unique())
    assert recipe.neighbor_loader is None and plain.neighbor_loader is None
    time_enc = recipe.model.memory.time_enc.lin
    d = time_enc.out_features
    torch.testing.assert_close(time_enc.weight.view(-1), 10.0 ** -torch.linspace(0, 9, d))
    assert not time_enc.bias.any()
    ours, theirs = (dict(m for part in r.model.modules() for m in part.state_dict().items())
                    for r in (recipe, plain))
    assert ours.keys() == theirs.keys()
    differ = {k for k in ours if not _equal(ours[k], theirs[k])}
    assert {"time_enc.lin.weight", "time_enc.lin.bias"} <= differ  # (DyRep's structural
    assert all(k.endswith(("time_enc.lin.weight", "time_enc.lin.bias"))  # attention shares it)
               for k in differ)


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


class _RecordingLoader:
    # The run's training loader, recording torch's random state at each
    # epoch's start (where the loader draws its epoch seed).
    def __init__(self, loader, states):
        self.loader, self.states = loader, states

    def __iter__(self):
        self.states.append(torch.get_rng_state())
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)


@pytest.mark.parametrize("recipe", ["dyglib", "pyg"])
def test_dyglib_recipe_trains_each_epoch_on_fresh_draws(recipe):
    # DyGLib draws new training negatives and dropout masks every epoch.
    # PyG's example reseeds in its evaluation, so each epoch after the first
    # starts from the same random state; --recipe pyg keeps that.
    from pyg_mspipe.cli.config import TrainConfig
    from pyg_mspipe.cli.run import setup_run
    from pyg_mspipe.cli.train import run_training

    run = setup_run(TrainConfig(data="synthetic:events=300,nodes=20", recipe=recipe,
                                negatives="random", epochs=3, batch_size=50, msg_dim=4,
                                memory_dim=8, embedding_dim=8, time_dim=8, threads=1))
    states = []
    run.train_loader = _RecordingLoader(run.train_loader, states)
    summary = run_training(run, show_progress=False, echo=lambda *_: None)
    assert len(states) == 3 and len(summary.epochs) == 3
    assert torch.equal(states[1], states[2]) == (recipe == "pyg")
    assert not torch.equal(states[0], states[1])
