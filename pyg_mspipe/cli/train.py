r"""``pyg-mspipe train``: trains a memory-based temporal GNN, with progress,
a per-epoch table, a final summary, checkpoints, a JSON summary and plots."""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import click
import torch

from pyg_mspipe import _cuda
from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.distributed import distribute_run, launch_context, rank_device
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.cli.options import DEVICE, MetricList
from pyg_mspipe.cli.plots import check_matplotlib, save_plots
from pyg_mspipe.cli.progress import EpochProgress
from pyg_mspipe.cli.resume import RestoringLoader, RunCheckpoint, RunState
from pyg_mspipe.cli.run import TrainingRun, is_tgb, setup_run
from pyg_mspipe.cli.summary import (
    EpochRecord,
    RunSummary,
    runs_lines,
    runs_to_dict,
    summary_lines,
    table_header,
    table_row,
    write_json,
)
from pyg_mspipe.datasets import FORMATS
from pyg_mspipe.distributed.training import train_steps as distributed_train_steps
from pyg_mspipe.engine.evaluation import evaluate_link_prediction
from pyg_mspipe.engine.models import MODELS
from pyg_mspipe.engine.recipes import RECIPES, evaluate_events, event_train_steps
from pyg_mspipe.engine.splits import NEW_NODE_DRAWS
from pyg_mspipe.engine.stopping import EarlyStopping
from pyg_mspipe.engine.tgb import TGBProtocol
from pyg_mspipe.engine.training import train_steps

__all__ = ["train", "run_training"]

_DEFAULTS = TrainConfig()


def _data_info(run: TrainingRun) -> dict:
    return {"spec": run.config.data, "num_events": run.data.num_events,
            "num_nodes": run.split.full.num_nodes, "msg_dim": run.data.msg.size(-1),
            "split": run.split.to_dict()}


def _evaluate(run: TrainingRun, part: str) -> tuple[dict, dict | None]:
    # The protocol's evaluation, seeded. PyG's example rewinds the global
    # RNG there, so every epoch after the first trains on the same
    # negatives and dropout masks; DyGLib's recipe evaluates aside, and
    # training draws fresh ones every epoch.
    with torch.random.fork_rng(_cuda.rng_devices(), enabled=run.config.recipe == "dyglib"):
        return _evaluate_part(run, part)


def _evaluate_part(run: TrainingRun, part: str) -> tuple[dict, dict | None]:
    # The protocol's evaluation, and on the inductive split also its
    # new-node subset (from the same state: the memory and neighbour loader,
    # if the model has one, are put back between).
    loader = run.val_loader if part == "val" else run.test_loader
    model, nl, stream = run.model, run.neighbor_loader, run.split.stream
    protocol = run.protocol
    kwargs = dict(num_negatives=protocol.num_negatives, metrics=protocol.metrics,
                  device=run.device)
    if isinstance(protocol, TGBProtocol):  # TGB's negatives and Evaluator
        kwargs["scores"] = protocol.scores()
    snapshot = None
    if protocol.split == "inductive":
        model.memory.eval()  # (leaving training mode flushes; the snapshot is after it)
        snapshot = copy.deepcopy((model.memory.state_dict(),
                                  None if nl is None else nl.state_dict()))
    evaluate = evaluate_link_prediction
    if run.per_event:
        # DyGLib's evaluation reads the neighbours of every event of the
        # stream (its full_neighbor_sampler), the training-period events of
        # the nodes an inductive split keeps out of training included.
        def evaluate(model, loader, nl, stream, **kw):
            return evaluate_events(model, loader, run.split.full,
                                   neighbor_sampler=run.eval_sampler, **kw)
    scores = evaluate(model, loader, nl, stream, sampler=protocol.sampler(run.split, part),
                      **kwargs)
    if snapshot is None:
        return scores, None
    model.memory.load_state_dict(snapshot[0])
    if nl is not None:
        nl.load_state_dict(snapshot[1])
    new = evaluate(model, loader, nl, stream,
                   sampler=protocol.sampler(run.split, part, new=True),
                   new_nodes=run.split.new_nodes, **kwargs)
    return scores, new


def run_training(run: TrainingRun, *, show_progress: bool = True, echo=print,
                 verbose: bool = False, finished_ok: bool = False) -> RunSummary:
    r"""Trains :obj:`run` for :obj:`run.config.epochs` epochs, evaluating on
    the validation and test split after each (:obj:`run.protocol`),
    checkpointing if :obj:`run.config.checkpoint_dir` is set (every
    :obj:`checkpoint_every` batches and at epoch ends) and resuming from it
    with :obj:`run.config.resume`. With :obj:`run.config.patience`, stops
    early (:class:`~pyg_mspipe.engine.stopping.EarlyStopping`), then restores
    the best epoch's state (as after its validation) and tests it again.
    Returns the run's summary.

    Args:
        run (TrainingRun): The run (:func:`~pyg_mspipe.cli.run.setup_run`).
        show_progress (bool, optional): The tqdm bar on stderr. (default: :obj:`True`)
        echo (callable, optional): Receives the table lines. (default: :func:`print`)
        verbose (bool, optional): Also print the pipeline's summary per epoch
            and, on stderr, a line per checkpoint saved. (default: :obj:`False`)
        finished_ok (bool, optional): Resuming a checkpoint of a finished run
            reports it (instead of raising :class:`ConfigError`), as one of
            several runs does. (default: :obj:`False`)
    """
    config = run.config
    objects = run.checkpoint_objects()
    stopper = None
    if config.patience is not None:
        stopper = objects["early_stopping"] = EarlyStopping(config.patience)
    checkpoint = None
    if config.checkpoint_dir is not None:
        checkpoint = RunCheckpoint(config.checkpoint_dir, config.to_dict())
    state = RunState()
    if config.resume:
        state = checkpoint.load(objects, map_location=run.device)
    summary = RunSummary(config.to_dict(), _data_info(run), run.protocol.to_dict(),
                         [EpochRecord(**r) for r in state.records], resumed=config.resume)
    metrics = run.protocol.metrics
    parts = ("val", "test") + (("val_new", "test_new") if run.protocol.split == "inductive"
                               else ())
    stopped = stopper is not None and stopper.stops_after(state.epoch)
    if state.epoch >= config.epochs and not finished_ok:
        raise ConfigError(f"--resume: the checkpoint has already run {state.epoch} epoch(s); "
                          f"pass --epochs above {state.epoch} to continue")
    if stopped and not finished_ok:
        raise ConfigError(f"--resume: the checkpoint's run stopped early after epoch "
                          f"{state.epoch} (--patience {config.patience})")
    echo(table_header(metrics, parts))
    for record in summary.epochs:
        echo(table_row(record, metrics))
    loader = run.train_loader
    while state.epoch < config.epochs and not stopped:
        epoch_loader = loader
        if state.mid_epoch:  # resume mid-epoch: the state after the reset of train_steps
            keep = {k: objects[k] for k in ("memory", "neighbor_loader") if k in objects}
            epoch_loader = RestoringLoader(loader, checkpoint, keep, run.device)
        progress = EpochProgress(state.epoch + 1, config.epochs, run.split.train.num_events,
                                 done=state.events, enabled=show_progress)
        start = time.perf_counter() - state.seconds
        if run.per_event:
            steps = event_train_steps(run.model, epoch_loader, run.split.stream,
                                      device=run.device)
        elif run.dp is None:
            steps = train_steps(run.model, epoch_loader, run.neighbor_loader,
                                run.split.stream, device=run.device)
        else:  # one rank of a torchrun launch: the global batch's loss and events
            steps = distributed_train_steps(run.model, run.dp, epoch_loader,
                                            run.neighbor_loader, run.split.stream,
                                            device=run.device)
        for loss, num_events in steps:
            staleness = None
            if loader.stats is not None and loader.stats.mode == "pipelined":
                staleness = loader.stats.record(state.batches).staleness
            state.batches += 1
            state.loss_sum += loss * num_events
            state.events += num_events
            progress.step(loss, num_events, staleness)
            if (checkpoint is not None and config.checkpoint_every
                    and state.batches % config.checkpoint_every == 0
                    and state.events < run.split.train.num_events):
                state.seconds = time.perf_counter() - start
                checkpoint.save(objects, state)
                if verbose:
                    progress.write(f"checkpoint: epoch {state.epoch + 1} batch "
                                   f"{state.batches} -> {checkpoint.path}")
        train_seconds = time.perf_counter() - start
        progress.close()
        pipeline = loader.stats.summary() if loader.stats is not None else None
        eval_start = time.perf_counter()
        val, val_new = _evaluate(run, "val")
        if stopper is not None:  # (the state after validation is the one kept)
            stopped = stopper.step(state.epoch + 1, val[metrics[0]], _model_state(run))
        test, test_new = _evaluate(run, "test")
        record = EpochRecord(state.epoch + 1, state.loss_sum / max(state.events, 1),
                             train_seconds, state.events / max(train_seconds, 1e-9), val, test,
                             time.perf_counter() - eval_start, pipeline, val_new, test_new)
        summary.epochs.append(record)
        echo(table_row(record, metrics))
        if verbose and pipeline is not None:
            echo(f"       pipeline: {loader.stats}")
        state = RunState(state.epoch + 1, [r.__dict__ for r in summary.epochs])
        if checkpoint is not None:
            checkpoint.save(objects, state)
            if verbose:
                click.echo(f"checkpoint: end of epoch {state.epoch} -> {checkpoint.path}",
                           err=True)
    summary.total_seconds = sum(r.train_seconds + r.eval_seconds for r in summary.epochs)
    if stopper is not None:
        # The kept state is that of a memory in evaluation mode (after
        # validation): leave training mode (which flushes) before loading it.
        run.model.memory.eval()
        stopper.restore(_model_state(run))
        test, test_new = _evaluate(run, "test")
        restored = {k: v for k, v in (("test", test), ("test_new", test_new)) if v is not None}
        summary.early_stopping = {
            "patience": config.patience, "best_epoch": stopper.best_epoch,
            "stopped_after": state.epoch if stopper.stops_after(state.epoch) else None,
            "restored": restored}
    return summary


def _model_state(run: TrainingRun) -> dict:
    # What early stopping keeps of the best epoch: parameters, memory and
    # neighbour loader (not the optimizer: the final test does not train).
    return {k: v for k, v in run.checkpoint_objects().items()
            if k in ("memory", "gnn", "link_pred", "neighbor_loader")}


def _check_outputs(config: TrainConfig):
    if config.val_ratio + config.test_ratio >= 1:
        raise ConfigError(f"--val-ratio {config.val_ratio} and --test-ratio "
                          f"{config.test_ratio} leave no training events (their sum must "
                          "be below 1)")
    if config.resume and config.checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint is)")
    if config.json_path is not None and not config.json_path.parent.is_dir():
        raise ConfigError(f"--json: no such folder '{config.json_path.parent}'")
    if config.plots_dir is not None:
        check_matplotlib("--plots")
        config.plots_dir.mkdir(parents=True, exist_ok=True)


_POSITIVE = click.IntRange(min=1)
_METRICS = MetricList()
_RATIO = click.FloatRange(0, 1, min_open=True, max_open=True)


@click.command()
@click.option("--data", default=_DEFAULTS.data, show_default=True,
              help="A dataset name, a data file, 'synthetic:events=E,nodes=N', "
                   "'jodie:<name>' or 'tgb:<dir>' (see 'pyg-mspipe datasets').")
@click.option("--format", type=click.Choice(sorted(FORMATS)), default=None,
              help="The data file's format (default: detected).")
@click.option("--msg-dim", type=_POSITIVE, default=None,
              help="Edge feature size: seeded features for data without them "
                   "[default: 16], zero-padding for data with fewer.")
@click.option("--edge-features", type=click.Choice(["random", "zeros"]), default=None,
              help="Edge features of data without any: seeded standard normals, or zeros "
                   "(as DyGLib and TGB) [default: random; zeros with --recipe dyglib].")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download folder of jodie:<name> data.")
@click.option("--model", type=click.Choice(sorted(MODELS)), default=_DEFAULTS.model,
              show_default=True, help="The memory model.")
@click.option("--recipe", type=click.Choice(RECIPES), default=_DEFAULTS.recipe,
              show_default=True,
              help="pyg: PyG's examples/tgn.py; dyglib: DyGLib's (TGN: each event's own "
                   "recent neighbours, TGAT attention; JODIE, DyRep: the engine's models "
                   "with DyGLib's sizes, negatives, split draw and time encoder init).")
@click.option("--epochs", type=_POSITIVE, default=_DEFAULTS.epochs, show_default=True,
              help="Training epochs (at most, with --patience).")
@click.option("--patience", type=_POSITIVE, default=None,
              help="Early stopping: stop after N epochs without a better validation score "
                   "(the first of --metrics), then restore the best epoch's parameters, "
                   "memory and neighbours and test them.")
@click.option("--runs", type=_POSITIVE, default=_DEFAULTS.runs, show_default=True,
              help="Independent runs, seeded --seed, --seed + 1, ...; mean and std of their "
                   "best epochs' metrics.")
@click.option("--batch-size", type=_POSITIVE, default=_DEFAULTS.batch_size,
              show_default=True, help="Events per batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS.lr,
              show_default=True, help="Adam learning rate.")
@click.option("--memory-dim", type=_POSITIVE, default=None,
              help="Memory size [default: 100; 172 with --recipe dyglib, DyGLib's].")
@click.option("--embedding-dim", type=_POSITIVE, default=None,
              help="Embedding size [default: 100; 172 with --recipe dyglib, DyGLib's].")
@click.option("--time-dim", type=_POSITIVE, default=_DEFAULTS.time_dim, show_default=True)
@click.option("--neighbors", type=_POSITIVE, default=_DEFAULTS.neighbors, show_default=True,
              help="Most recent neighbours sampled per node.")
@click.option("--device", type=DEVICE, default=_DEFAULTS.device, show_default=True)
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True)
@click.option("--threads", type=_POSITIVE, default=None,
              help="PyTorch's intra-op threads (default: PyTorch's choice).")
@click.option("--staleness-bound", type=click.IntRange(min=0), default=None,
              help="Switch on the MSPipe pipeline: memory reads at most this many batches "
                   "stale.")
@click.option("--schedule", type=click.Choice(["online", "fixed"]),
              default=_DEFAULTS.schedule, show_default=True,
              help="The pipeline's schedule (with --staleness-bound).")
@click.option("--storage", type=click.Choice(["cpu"]), default=None,
              help="Keep the memory in (pinned) host memory.")
@click.option("--val-ratio", type=_RATIO, default=_DEFAULTS.val_ratio, show_default=True)
@click.option("--test-ratio", type=_RATIO, default=_DEFAULTS.test_ratio, show_default=True)
@click.option("--split", type=click.Choice(["transductive", "inductive"]),
              default=_DEFAULTS.split, show_default=True,
              help="Evaluation split: inductive keeps new nodes out of training and also "
                   "scores the events with a new node.")
@click.option("--new-node-ratio", type=_RATIO, default=_DEFAULTS.new_node_ratio,
              show_default=True, help="Nodes drawn as new ones (--split inductive).")
@click.option("--new-node-draw", type=click.Choice(NEW_NODE_DRAWS), default=None,
              help="How --split inductive draws them: torch (seeded --eval-seed) or "
                   "DyGLib's (its seed 2020: on CollegeMsg, the nodes DyGLib keeps out) "
                   "[default: torch; dyglib with --recipe dyglib].")
@click.option("--negatives", type=click.Choice(["pyg", "random", "historical", "inductive"]),
              default=_DEFAULTS.negatives, show_default=True,
              help="Evaluation negatives: the loader's (PyG's example) or DyGLib's "
                   "samplers.")
@click.option("--train-negatives", type=click.Choice(["pyg", "random"]), default=None,
              help="Training negatives' destinations: uniform over [min, max] of the training "
                   "destinations (PyG's example) or over the distinct ones (DyGLib's) "
                   "[default: pyg; random with --recipe dyglib].")
@click.option("--num-negatives", type=_POSITIVE, default=_DEFAULTS.num_negatives,
              show_default=True, help="Negatives per positive (with a sampler).")
@click.option("--metrics", type=_METRICS, default=",".join(_DEFAULTS.metrics),
              show_default=True,
              help="Comma-separated among ap, auc, mrr, hits@K; the first picks the best "
                   "epoch (tgb:<dir> data: mrr,hits@10 and only those).")
@click.option("--eval-seed", type=int, default=_DEFAULTS.eval_seed, show_default=True,
              help="Seed of the negative samplers and of the new-node draw.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Save checkpoints there (atomically).")
@click.option("--checkpoint-every", type=click.IntRange(min=0),
              default=_DEFAULTS.checkpoint_every, show_default=True,
              help="Batches between mid-epoch checkpoints (0: at epoch ends only).")
@click.option("--resume", is_flag=True,
              help="Continue from the checkpoint in --checkpoint-dir (mid-epoch too).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the JSON summary there.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write PNG plots there (loss, AP, pipeline timeline).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-epoch table.")
@click.option("-v", "--verbose", is_flag=True, help="Also the configuration and the "
              "pipeline's statistics per epoch.")
def train(quiet: bool, verbose: bool, **options):
    r"""Train a memory-based temporal GNN (default: TGN on the bundled
    CollegeMsg data, PyG's example settings) and report per-epoch metrics."""
    if quiet and verbose:
        raise ConfigError("--quiet and --verbose exclude each other")
    config = TrainConfig(**options)
    ctx = click.get_current_context()
    if is_tgb(config.data) and (ctx.get_parameter_source("metrics")
                                is not click.core.ParameterSource.COMMANDLINE):
        config = replace(config, metrics=("mrr", "hits@10"))  # TGB reports these
    if config.staleness_bound is None:
        if ctx.get_parameter_source("schedule") is click.core.ParameterSource.COMMANDLINE:
            raise ConfigError("--schedule configures the pipeline: it needs "
                              "--staleness-bound")
    _check_outputs(config)
    context = launch_context(config.device)  # torchrun's environment, if any
    if context is not None:
        if config.runs > 1:
            raise ConfigError("--runs above 1 is not supported under torchrun yet (launch "
                              "one torchrun per seed)")
        if config.recipe == "dyglib":
            raise ConfigError("--recipe dyglib does not run distributed (torchrun): "
                              "use --recipe pyg")
        config = replace(config, device=rank_device(config.device))
    configs = _run_configs(config)
    echo = (lambda line: None) if quiet else click.echo
    summaries = []
    for k, run_config in enumerate(configs):
        run = setup_run(run_config)
        if context is not None:
            run = distribute_run(run, context)
            if context.rank != 0:  # every rank trains and evaluates; rank 0 reports
                quiet, verbose = True, False
                echo = lambda line: None  # noqa: E731
                config = replace(config, json_path=None)
        if verbose and k == 0:
            click.echo(f"config: {config.to_dict()}")
            click.echo(f"data: {_data_info(run)}")
        if len(configs) > 1:
            echo(f"run {k + 1}/{len(configs)}: seed {run_config.seed}")
        summary = run_training(run, show_progress=not quiet, echo=echo, verbose=verbose,
                               finished_ok=len(configs) > 1)
        summaries.append(summary)
        if context is not None:
            run.dp.barrier()
            run.dp.close()
            context.close()
            if context.rank != 0:
                return
        if len(configs) > 1:
            for line in summary_lines(summary):
                click.echo(f"run {k + 1}/{len(configs)}: {line}")
        if run_config.plots_dir is not None:
            for path in save_plots(summary, run.train_loader.stats, run_config.plots_dir):
                click.echo(f"plot: {path}")
    lines = summary_lines(summaries[0]) if len(summaries) == 1 else runs_lines(summaries)
    for line in lines:
        click.echo(line)
    if config.json_path is not None:
        write_json(summaries[0] if len(summaries) == 1 else runs_to_dict(summaries),
                   config.json_path)


def _run_configs(config: TrainConfig) -> list[TrainConfig]:
    # The runs of --runs K: seeds seed..seed+K-1, each with its own
    # checkpoint and plot folder (run-1, run-2, ...); resumed, a run without
    # a checkpoint yet starts afresh.
    if config.runs == 1:
        return [config]
    configs = []
    for k in range(config.runs):
        sub = f"run-{k + 1}"
        run_config = replace(config, seed=config.seed + k)
        if config.plots_dir is not None:
            run_config = replace(run_config, plots_dir=config.plots_dir / sub)
        if config.checkpoint_dir is not None:
            folder = config.checkpoint_dir / sub
            resume = config.resume and (folder / "checkpoint.pt").is_file()
            run_config = replace(run_config, checkpoint_dir=folder, resume=resume)
        configs.append(run_config)
    if config.resume and not any(c.resume for c in configs):
        raise ConfigError(f"--resume: no checkpoint at '{configs[0].checkpoint_dir}' "
                          f"(nor of any later run)")
    return configs
