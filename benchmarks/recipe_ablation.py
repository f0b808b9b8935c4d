"""Ablation of the TGN recipe on CollegeMsg: PyG's example (``--recipe pyg``)
against DyGLib's (``--recipe dyglib``), one change at a time.

Each run is ``pyg-mspipe train`` with ``--negatives random`` (DyGLib's
random evaluation negatives), batch 200, the given epochs and seed, through
the CLI's own setup and loop (``setup_run`` / ``run_training``); a variant
then replaces the model or the data. It reports the test AP of the best
validation epoch and the training events/s. Results are appended as JSON
lines to --out (finished runs are skipped) and the Markdown table (mean ±
sample sd over seeds) is printed.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/recipe_ablation.py \\
        --variants pyg dyglib --seeds 0 1 --epochs 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.run import setup_run
from pyg_mspipe.cli.train import run_training
from pyg_mspipe.engine.recipes import build_event_tgn, dyglib_time_init

#: variant -> (change, recipe, options of build_event_tgn, edge features of CollegeMsg)
VARIANTS = {
    "pyg": ("PyG's example (--recipe pyg)", "pyg", None, "random"),
    "pyg-zero-msg": ("PyG's example, zero edge features", "pyg", None, "zeros"),
    "pyg-time-init": ("PyG's example, DyGLib's time-encoder initialisation", "pyg",
                      "time_init", "random"),
    "dyglib": ("DyGLib's recipe (--recipe dyglib)", "dyglib", None, "zeros"),
    "dyglib-random-msg": ("DyGLib's, seeded random edge features", "dyglib", None, "random"),
    "dyglib-random-msg-batch": ("DyGLib's, random edge features, neighbours sampled before "
                                "the batch (PyG's way)", "dyglib",
                                dict(query_time="batch"), "random"),
    "dyglib-batch": ("DyGLib's, neighbours sampled before the batch (PyG's way)", "dyglib",
                     dict(query_time="batch"), "zeros"),
    "dyglib-pyg-time-init": ("DyGLib's, PyG's time-encoder initialisation", "dyglib",
                             dict(time_init="pyg"), "zeros"),
    "dyglib-transformer": ("DyGLib's, PyG's TransformerConv embedding (per event)",
                           "dyglib", dict(embedding="transformer"), "zeros"),
}


def run(variant: str, seed: int, epochs: int, neighbors: int) -> dict:
    _, recipe, options, features = VARIANTS[variant]
    # The sizes and training negatives these rows ran with (--recipe dyglib's
    # defaults became DyGLib's 172 and its training negatives later).
    config = TrainConfig(recipe=recipe, epochs=epochs, seed=seed, threads=1,
                         negatives="random", neighbors=neighbors,
                         edge_features=features, memory_dim=100, embedding_dim=100,
                         train_negatives="pyg")
    run = setup_run(config)
    if options == "time_init":
        dyglib_time_init(run.model.memory.time_enc)
    elif options:
        torch.manual_seed(seed)
        run.model = build_event_tgn(run.split.full.num_nodes, run.data.msg.size(-1),
                                    run.model.sampler, lr=config.lr, **options)
        run.train_loader.memory = run.model.memory
    start = time.perf_counter()
    summary = run_training(run, show_progress=False, echo=lambda line: None)
    best = summary.best()
    return dict(variant=variant, seed=seed, epochs=epochs, neighbors=neighbors,
                best_epoch=best.epoch, val_ap=best.val["ap"], test_ap=best.test["ap"],
                test_auc=best.test["auc"],
                train_events_per_s=statistics.median(r.events_per_second
                                                      for r in summary.epochs),
                test_ap_per_epoch=[r.test["ap"] for r in summary.epochs],
                seconds=time.perf_counter() - start)


def table(rows: list[dict]) -> str:
    out = ["| variant | change | test AP (mean ± sd) | seeds | epochs | train events/s |",
           "| --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(r["variant"], r["epochs"], r["neighbors"]) for r in rows},
                  key=lambda k: list(VARIANTS).index(k[0]))
    for variant, epochs, neighbors in keys:
        rs = [r for r in rows if (r["variant"], r["epochs"], r["neighbors"])
              == (variant, epochs, neighbors)]
        aps = [r["test_ap"] for r in rs]
        sd = statistics.stdev(aps) if len(aps) > 1 else float("nan")
        eps = statistics.median(r["train_events_per_s"] for r in rs)
        out.append(f"| {variant} | {VARIANTS[variant][0]} | {statistics.mean(aps):.4f} ± "
                   f"{sd:.4f} | {','.join(str(r['seed']) for r in rs)} | {epochs} | "
                   f"{eps:.0f} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--neighbors", type=int, default=10)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "recipe_ablation.jsonl")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    rows = []
    if args.out.exists():
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line]
    done = {(r["variant"], r["seed"], r["epochs"], r["neighbors"]) for r in rows}
    if not args.table_only:
        for seed in args.seeds:
            for variant in args.variants:
                if (variant, seed, args.epochs, args.neighbors) in done:
                    continue
                row = run(variant, seed, args.epochs, args.neighbors)
                print(json.dumps({k: v for k, v in row.items() if k != "test_ap_per_epoch"}),
                      flush=True)
                rows.append(row)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
