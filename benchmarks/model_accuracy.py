"""Test AP and AUC of the four memory models (TGN, JODIE, DyRep, APAN) on
CollegeMsg and the Wikipedia stream, trained sequentially with PyG's
example loop (``engine.training``), several seeds.

Protocol: chronological 70/15/15 split (``train_val_test_split``), batch
200, one random negative destination per event (PyG's loader), Adam lr
1e-4, memory and time dims 100; after every epoch validation then test are
evaluated in stream order (PyG's ``examples/tgn.py``), and the test AP and
AUC of the best validation epoch are reported (at most --max-epochs epochs,
stopping after --patience epochs without improvement). Edge features are
seeded random vectors (CollegeMsg has none; the Wikipedia file here has none).

Results are appended as JSON lines to --out (finished runs are skipped) and
the Markdown table (mean ± sample sd over seeds) is printed.

    nice -n 10 python benchmarks/model_accuracy.py --dataset college \\
        --models tgn jodie dyrep apan --seeds 0 1 2
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
from pyg_mspipe.engine.models import MODELS, build_model
from pyg_mspipe.engine.training import evaluate, train_epoch


def run(dataset: str, name: str, seed: int, batch_size: int, patience: int,
        max_epochs: int) -> dict:
    data = load_dataset(dataset)
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    gc.collect()
    torch.manual_seed(seed)
    model = build_model(name, data.num_nodes, data.msg.size(-1))
    nl = LastNeighborLoader(data.num_nodes, size=10) if model.needs_neighbors else None
    train_loader, val_loader, test_loader = (
        TemporalDataLoader(d, batch_size=batch_size, neg_sampling_ratio=1.0)
        for d in (train_data, val_data, test_data))
    begin = time.perf_counter()
    curve, best = [], None
    for epoch in range(1, max_epochs + 1):
        loss = train_epoch(model, train_loader, nl, data)
        val_ap, val_auc = evaluate(model, val_loader, nl, data)
        test_ap, test_auc = evaluate(model, test_loader, nl, data)
        curve.append({"epoch": epoch, "loss": loss, "val_ap": val_ap, "val_auc": val_auc,
                      "test_ap": test_ap, "test_auc": test_auc,
                      "seconds": time.perf_counter() - begin})
        print(f"  {dataset} {name} seed {seed} epoch {epoch}: loss {loss:.4f} "
              f"val AP {val_ap:.4f} test AP {test_ap:.4f}", flush=True)
        if best is None or val_ap > best["val_ap"]:
            best = curve[-1]
        elif epoch - best["epoch"] >= patience:
            break
    return {"dataset": dataset, "model": name, "seed": seed, "batch_size": batch_size,
            "patience": patience, "max_epochs": max_epochs, "best_epoch": best["epoch"],
            "epochs_run": len(curve),
            "capped": len(curve) == max_epochs and best["epoch"] > max_epochs - patience,
            "test_ap": best["test_ap"], "test_auc": best["test_auc"],
            "val_ap": best["val_ap"], "curve": curve,
            "seconds": time.perf_counter() - begin}


def _cell(sel: list[dict], key: str) -> str:
    xs = [100 * r[key] for r in sel]
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.2f} ± {sd:.2f}"


def table(rows: list[dict]) -> str:
    out = ["| dataset | model | test AP (mean ± sd) | test AUC (mean ± sd) | seeds | "
           "best epoch per seed (* capped) |", "| --- | --- | --- | --- | --- | --- |"]
    order = list(MODELS)
    for dataset, name in sorted({(r["dataset"], r["model"]) for r in rows},
                                key=lambda k: (k[0], order.index(k[1]))):
        sel = sorted((r for r in rows if (r["dataset"], r["model"]) == (dataset, name)),
                     key=lambda r: r["seed"])

        epochs = ", ".join(f"{r['best_epoch']}{'*' if r['capped'] else ''}" for r in sel)
        out.append(f"| {dataset} | {name} | {_cell(sel, 'test_ap')} | {_cell(sel, 'test_auc')} | "
                   f"{len(sel)} | {epochs} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["college", "wikipedia"], nargs="+",
                        default=["college"])
    parser.add_argument("--models", choices=sorted(MODELS), nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/models_accuracy.jsonl")
    parser.add_argument("--table", action="store_true", help="only print the table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if not args.table:
        for dataset in args.dataset:
            for seed in args.seeds:
                for name in args.models:
                    done = {(r["dataset"], r["model"], r["seed"], r["batch_size"],
                             r["max_epochs"]) for r in rows}
                    if (dataset, name, seed, args.batch_size, args.max_epochs) in done:
                        continue
                    row = run(dataset, name, seed, args.batch_size, args.patience,
                              args.max_epochs)
                    rows.append(row)
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
