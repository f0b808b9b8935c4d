"""What the online schedule and the refresh correction realise when the
write-back is slow, as on a GPU where fetch and write-back no longer hide
behind the backward pass.

On this CPU the training step is slow next to the pipeline's memory stages,
so the online scheduler picks ``s_min = 0`` and there is no staleness for the
refresh to remove. To put the refresh to the test, each write-back here is
made slower by a fixed delay: a hook on the memory's stages
(``pyg_mspipe.pipeline.hook_stages``, through ``TGNMemory.steps``) sleeps
``--delays`` milliseconds in the pipeline's worker before each write-back,
holding the state as a slow copy would. For each delay, the online schedule with bound s trains
CollegeMsg (PyG's example TGN, batch 200), without and with
``StalenessCorrection`` (the online refresh: on the training thread, waits
for nothing), and reports

* the bound the scheduler picked (``s_min``), the fetch's mean staleness and,
  with the refresh, the staleness at use time (``mean_refreshed_staleness``);
* the rows refreshed per batch, the training loop's stall per batch and the
  wall time per training batch (the delay costs wall time; these runs say
  what the refresh recovers, not how fast a GPU is);
* the test AP after --epochs epochs next to the sequential run's (same seed,
  same epochs): a short-run indication only; the realised staleness maps to
  the convergence rows of docs/staleness.md.

    python benchmarks/staleness_online.py --delays 0 20 60 --epochs 2
"""
from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch
from common import load_dataset

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch
from pyg_mspipe.pipeline import StalenessCorrection, hook_stages


def slow_writes(delay: float):
    r"""A stage hook that makes every write-back :obj:`delay` seconds late
    (in the thread that runs it: the pipeline's worker)."""
    def hook(stage: str):
        if stage == "write":
            time.sleep(delay)
    return hook


def run(data, splits, seed: int, bound: int | None, delay_ms: float, refresh: bool,
        epochs: int, batch_size: int) -> dict:
    train_data, val_data, test_data = splits
    gc.collect()
    torch.manual_seed(seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1))
    steps = model.memory.steps
    if delay_ms > 0:
        hook_stages(model.memory, slow_writes(delay_ms / 1000))
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    options = {} if bound is None else {
        "staleness_bound": bound, "schedule": "online",
        "correction": StalenessCorrection() if refresh else False}
    train_loader = TemporalDataLoader(train_data, batch_size=batch_size, neg_sampling_ratio=1.0,
                                      memory=model.memory, neighbor_loader=neighbor_loader,
                                      prefetch=2, **options)
    val_loader, test_loader = (
        TemporalDataLoader(d, batch_size=batch_size, neg_sampling_ratio=1.0, prefetch=0)
        for d in (val_data, test_data))
    seconds, summaries = 0.0, []
    for _ in range(epochs):
        begin = time.perf_counter()
        train_epoch(model, train_loader, neighbor_loader, data)
        seconds += time.perf_counter() - begin
        if bound is not None:
            summaries.append(train_loader.stats.summary())
    model.memory.steps = steps
    test_ap, test_auc = evaluate(model, test_loader, neighbor_loader, data)
    row = {"seed": seed, "bound": bound, "delay_ms": delay_ms, "refresh": refresh,
           "epochs": epochs, "batch_size": batch_size, "test_ap": test_ap,
           "test_auc": test_auc, "events_per_s": epochs * train_data.num_events / seconds}
    if summaries:
        last = summaries[-1]
        iters = last["iterations"]
        row |= {"s_min": last["s_min"],
                "mean_staleness": last["mean_staleness"],
                "histogram": last["histogram"],
                "mean_refreshed_staleness": last["mean_refreshed_staleness"],
                "refreshed_histogram": last["refreshed_histogram"],
                "refreshed_rows_per_batch": last["refreshed_rows"] / max(iters, 1),
                "stall_ms_per_batch": 1000 * last["stall_seconds"] / max(iters, 1)}
    return row


def step(r: dict) -> float:
    r"""Wall milliseconds per training batch (stalls included)."""
    return 1000 * r["batch_size"] / r["events_per_s"]


def table(rows: list[dict]) -> str:
    base = {r["seed"]: r for r in rows if r["bound"] is None}
    out = ["| write-back delay (ms) | refresh | s_min picked | fetch staleness (mean) | "
           "staleness at use (mean) | rows refreshed / batch | stall / batch (ms) | "
           "step (ms) | test AP | vs sequential (points) |",
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        seq = base.get(r["seed"])
        if r["bound"] is None:
            out.append(f"| – | sequential | – | 0 | 0 | – | – | {step(r):.0f} | "
                       f"{100 * r['test_ap']:.2f} | 0.00 |")
            continue
        use = r["mean_refreshed_staleness"]
        use = f"{use:.2f}" if use is not None else f"{r['mean_staleness']:.2f}"
        diff = f"{100 * (seq['test_ap'] - r['test_ap']):+.2f}" if seq else "n/a"
        out.append(f"| {r['delay_ms']:g} | {'on' if r['refresh'] else 'off'} | {r['s_min']} | "
                   f"{r['mean_staleness']:.2f} | {use} | "
                   f"{r['refreshed_rows_per_batch']:.1f} | {r['stall_ms_per_batch']:.1f} | "
                   f"{step(r):.0f} | {100 * r['test_ap']:.2f} | {diff} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--bound", type=int, default=2)
    parser.add_argument("--delays", type=float, nargs="+", default=[0, 20, 60],
                        help="extra write-back time, milliseconds")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/staleness_online.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    splits = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    rows = [run(data, splits, args.seed, None, 0, False, args.epochs, args.batch_size)]
    print(json.dumps(rows[-1]), flush=True)
    for delay in args.delays:
        for refresh in (False, True):
            rows.append(run(data, splits, args.seed, args.bound, delay, refresh, args.epochs,
                            args.batch_size))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        for r in rows:
            f.write(json.dumps(r | {"dataset": args.dataset}) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
