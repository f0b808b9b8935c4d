"""Test AP of TGN trained through the MSPipe pipeline, for staleness bounds
s = 0, 1, 2, 4 with and without staleness mitigation, and with the online
scheduler (bound 4, the scheduler picks min(s_min, 4)).

The fixed schedule makes every memory read exactly s iterations stale (the
worst case the bound allows), so the table shows what staleness itself
costs; the online row shows what the scheduler actually picks on this
machine. Results are appended as JSON lines to --out (a run can be resumed:
finished configurations are skipped), and the Markdown table is printed.

    python benchmarks/accuracy_staleness.py --dataset college --epochs 5
    python benchmarks/accuracy_staleness.py --dataset wikipedia --epochs 2
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from common import load_dataset

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch
from pyg_mspipe.pipeline import StalenessMitigation

CONFIGS = [(s, schedule, mit) for s in (0, 1, 2, 4) for schedule in ("fixed",)
           for mit in (False, True)] + [(4, "online", False)]


def run(dataset: str, seed: int, bound: int, schedule: str, mitigation: bool,
        epochs: int) -> dict:
    data = load_dataset(dataset)
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    gc.collect()
    torch.manual_seed(seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1))
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    train_loader = TemporalDataLoader(
        train_data, batch_size=200, neg_sampling_ratio=1.0, memory=model.memory,
        neighbor_loader=neighbor_loader, staleness_bound=bound, schedule=schedule, prefetch=2,
        mitigation=StalenessMitigation() if mitigation else False)
    eval_loaders = [TemporalDataLoader(d, batch_size=200, neg_sampling_ratio=1.0, prefetch=0)
                    for d in (val_data, test_data)]
    begin = time.perf_counter()
    staleness, chosen = [], []
    for _ in range(epochs):
        train_epoch(model, train_loader, neighbor_loader, data)
        summary = train_loader.stats.summary()
        staleness.append(summary["mean_staleness"])
        chosen.append(summary["s_min"])
        evaluate(model, eval_loaders[0], neighbor_loader, data)
        test_ap, test_auc = evaluate(model, eval_loaders[1], neighbor_loader, data)
    return {"dataset": dataset, "seed": seed, "bound": bound, "schedule": schedule,
            "mitigation": mitigation, "epochs": epochs, "test_ap": test_ap,
            "test_auc": test_auc, "mean_staleness": staleness[-1], "s_min": chosen[-1],
            "seconds": time.perf_counter() - begin}


def table(rows: list[dict]) -> str:
    out = ["| dataset | schedule | s | mitigation | realised staleness (mean) | "
           "test AP (mean ± sd over seeds) | per seed | drop vs s=0 (points) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(r["dataset"], r["schedule"], r["bound"], r["mitigation"]) for r in rows},
                  key=lambda k: (k[0], k[1] == "online", k[2], k[3]))
    for dataset, schedule, bound, mit in keys:
        sel = sorted((r for r in rows if (r["dataset"], r["schedule"], r["bound"],
                                           r["mitigation"]) == (dataset, schedule, bound, mit)),
                     key=lambda r: r["seed"])
        base = {r["seed"]: r["test_ap"] for r in rows if r["dataset"] == dataset
                and r["schedule"] == "fixed" and r["bound"] == 0 and not r["mitigation"]}
        aps = [100 * r["test_ap"] for r in sel]
        drops = [100 * (base[r["seed"]] - r["test_ap"]) for r in sel if r["seed"] in base]
        sd = statistics.stdev(aps) if len(aps) > 1 else 0.0
        label = f"online (bound {bound}, s_min {sel[-1]['s_min']})" if schedule == "online" \
            else "fixed"
        out.append(
            f"| {dataset} | {label} | {bound} | {'on' if mit else 'off'} | "
            f"{statistics.mean(r['mean_staleness'] for r in sel):.2f} | "
            f"{statistics.mean(aps):.2f} ± {sd:.2f} | "
            f"{', '.join(f'{a:.2f}' for a in aps)} | "
            f"{statistics.mean(drops):+.2f} |" if drops else "| n/a |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/results/accuracy_staleness.jsonl")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    done = {(r["dataset"], r["seed"], r["bound"], r["schedule"], r["mitigation"], r["epochs"])
            for r in rows}
    for seed in args.seeds:
        for bound, schedule, mit in CONFIGS:
            key = (args.dataset, seed, bound, schedule, mit, args.epochs)
            if key in done:
                continue
            row = run(args.dataset, seed, bound, schedule, mit, args.epochs)
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    print(table([r for r in rows if r["dataset"] == args.dataset
                 and r["epochs"] == args.epochs]))


if __name__ == "__main__":
    main()
