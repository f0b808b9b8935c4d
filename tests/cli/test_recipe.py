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
    (["--model", "jodie"], "--model tgn only"),
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
