r"""``pyg-mspipe bench``: PyG's TGN training loop against pyg_mspipe's on the
same data in one run: a ratio table on stdout and the pipeline's timeline
PNG."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import click
import torch

from pyg_mspipe import _cuda
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.cli.options import DEVICE
from pyg_mspipe.cli.plots import check_matplotlib, save_timeline
from pyg_mspipe.datasets import FORMATS
from pyg_mspipe.engine.compare import interleaved_epoch
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.training import build_tgn, train_epoch, train_steps

__all__ = ["bench", "contender"]


def contender(name: str, data, train_data, *, batch_size: int, device, seed: int,
              staleness_bound: int | None = None, schedule: str = "fixed"):
    r"""A fresh (model, loader, neighbour loader) of PyG's classes
    (:obj:`name="pyg"`) or pyg_mspipe's, seeded with :obj:`seed`, as PyG's
    ``examples/tgn.py`` builds them (memory, embedding and time size 100, 10
    neighbours); pyg_mspipe's pipelined with :obj:`staleness_bound`."""
    import torch_geometric.loader
    import torch_geometric.nn
    import torch_geometric.nn.models.tgn as pyg_tgn

    import pyg_mspipe

    torch.manual_seed(seed)
    if name == "pyg":
        model = build_tgn(data.num_nodes, data.msg.size(-1),
                          memory_cls=torch_geometric.nn.TGNMemory,
                          message_cls=pyg_tgn.IdentityMessage,
                          aggregator_cls=pyg_tgn.LastAggregator, device=device)
        neighbor_loader = pyg_tgn.LastNeighborLoader(data.num_nodes, size=10, device=device)
        loader = torch_geometric.loader.TemporalDataLoader(train_data, batch_size=batch_size,
                                                           neg_sampling_ratio=1.0)
        return model, loader, neighbor_loader
    model = build_tgn(data.num_nodes, data.msg.size(-1), device=device)
    neighbor_loader = pyg_mspipe.LastNeighborLoader(data.num_nodes, size=10, device=device)
    extra = {}
    if staleness_bound is not None:
        extra = dict(memory=model.memory, neighbor_loader=neighbor_loader,
                     staleness_bound=staleness_bound, schedule=schedule, device=device)
    loader = pyg_mspipe.TemporalDataLoader(train_data, batch_size=batch_size,
                                           neg_sampling_ratio=1.0, **extra)
    return model, loader, neighbor_loader


def _timed_epoch(parts, data, device) -> float:
    model, loader, neighbor_loader = parts
    _cuda.synchronize(device)
    start = time.perf_counter()
    train_epoch(model, loader, neighbor_loader, data, device=device)
    _cuda.synchronize(device)
    return time.perf_counter() - start


@click.command()
@click.option("--data", default="college", show_default=True,
              help="As for 'pyg-mspipe train'.")
@click.option("--format", type=click.Choice(sorted(FORMATS)), default=None,
              help="The data file's format (default: detected).")
@click.option("--max-events", type=click.IntRange(min=1), default=None,
              help="Train on the first N training events only.")
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Epochs per contender.")
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--staleness-bound", type=click.IntRange(min=0), default=2, show_default=True,
              help="The pipelined contender's bound.")
@click.option("--schedule", type=click.Choice(["online", "fixed"]), default="fixed",
              show_default=True, help="The pipelined contender's schedule.")
@click.option("--no-pipeline", is_flag=True, help="Leave out the pipelined contender.")
@click.option("--timeline", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("pyg-mspipe-timeline.png"), show_default=True,
              help="Where the pipelined contender's timeline PNG goes.")
def bench(data, format, max_events, batch_size, rounds, device, seed, staleness_bound,
          schedule, no_pipeline, timeline):
    r"""Time PyG's TGN training loop against pyg_mspipe's on the same data.

    Each round: one epoch of PyG's loop and of ours interleaved batch by
    batch (each timed inside its own steps), then, unless --no-pipeline, one
    epoch of PyG's loop and one of ours pipelined, alternating which goes
    first. Prints each round and the median per-round ratios; writes the
    pipelined contender's timeline (last round)."""
    if not no_pipeline:
        check_matplotlib("the timeline (--timeline)")
        if not timeline.parent.is_dir():
            raise ConfigError(f"--timeline: no such folder '{timeline.parent}'")
    device = torch.device(device)
    stream = resolve_data(data, format=format)
    train_data, _, _ = stream.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    if max_events:
        train_data = train_data[:max_events]
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
               f"{device}; data {data}: {train_data.num_events} training events, batch "
               f"{batch_size}, {rounds} round(s)")
    kwargs = dict(batch_size=batch_size, device=device, seed=seed)
    warm = train_data[: min(2000, train_data.num_events)]
    interleaved_epoch({name: train_steps(*contender(name, stream, warm, **kwargs), stream,
                                         device=device) for name in ("pyg", "ours")})
    seconds = {"pyg": [], "ours": [], "pyg (vs pipelined)": [], "ours pipelined": []}
    stats = None
    for r in range(rounds):
        steps = {name: train_steps(*contender(name, stream, train_data, **kwargs), stream,
                                   device=device) for name in ("pyg", "ours")}
        times = interleaved_epoch(steps)
        line = (f"round {r}: interleaved per batch: pyg {times['pyg']:.2f}s ours "
                f"{times['ours']:.2f}s ({times['pyg'] / times['ours']:.2f}x)")
        seconds["pyg"].append(times["pyg"])
        seconds["ours"].append(times["ours"])
        if not no_pipeline:
            order = ["pyg", "pipelined"] if r % 2 == 0 else ["pipelined", "pyg"]
            for name in order:
                if name == "pyg":
                    seconds["pyg (vs pipelined)"].append(
                        _timed_epoch(contender("pyg", stream, train_data, **kwargs), stream,
                                     device))
                else:
                    parts = contender("ours", stream, train_data, staleness_bound=staleness_bound,
                                      schedule=schedule, **kwargs)
                    seconds["ours pipelined"].append(_timed_epoch(parts, stream, device))
                    stats = parts[1].stats
            line += (f"; alternating per epoch: pyg {seconds['pyg (vs pipelined)'][-1]:.2f}s "
                     f"ours s={staleness_bound} {schedule} "
                     f"{seconds['ours pipelined'][-1]:.2f}s")
        click.echo(line)
    click.echo("")
    click.echo(f"{'contender':<28} {'method':<24} {'median s/epoch':>14} "
               f"{'speed-up vs pyg':>15}")
    click.echo(f"{'pyg (PyG examples/tgn.py)':<28} {'-':<24} "
               f"{statistics.median(seconds['pyg']):14.2f} {'1.00x':>15}")
    rows = [("ours", "ours", "pyg", "interleaved per batch")]
    if not no_pipeline:
        rows.append((f"ours, s={staleness_bound} {schedule}", "ours pipelined",
                     "pyg (vs pipelined)", "alternating per epoch"))
    for label, key, base, method in rows:
        ratio = statistics.median(b / o for b, o in zip(seconds[base], seconds[key]))
        click.echo(f"{label:<28} {method:<24} {statistics.median(seconds[key]):14.2f} "
                   f"{ratio:14.2f}x")
    click.echo("(speed-up: median of the per-round ratios of PyG's epoch time to ours)")
    if stats is not None:
        save_timeline(stats, timeline)
        summary = stats.summary()
        click.echo(f"pipeline ({summary['mode']}): realised staleness max "
                   f"{summary['max_staleness']} mean {summary['mean_staleness']:.2f}; "
                   f"timeline: {timeline}")
