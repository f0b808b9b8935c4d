"""Test AP of TGN trained through the MSPipe pipeline to convergence, for
staleness bounds s = 0, 1, 2, 4, with and without a staleness correction.

Each run trains until the validation AP has not improved for --patience
epochs (at most --max-epochs) and reports the test AP of the best validation
epoch (validation, then test, evaluated sequentially after every epoch as in
PyG's example), the epochs to that best epoch, and the per-epoch train loss
and validation AP (the loss curves, --plot).

Cells (--cells, any of):

* ``fixed``: every memory read exactly s iterations stale (the worst case the
  bound allows; deterministic);
* ``refresh``: fixed schedule with :class:`StalenessCorrection` (lag 0: the
  read is refreshed to the write-back just before it, the numbers of s=0);
* ``online`` / ``online-refresh``: the online scheduler with bound s, without
  and with the refresh (what it realises on this machine is recorded).

Results are appended as JSON lines to --out (finished runs are skipped), and
the Markdown table is printed.

    python benchmarks/accuracy_staleness.py --dataset college --bounds 0 2 \\
        --cells fixed refresh --seeds 0 1 2
    python benchmarks/accuracy_staleness.py --dataset dense --bounds 0 2
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from common import load_dataset as load_named

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.datasets import load_dataset as load_spec
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch
from pyg_mspipe.pipeline import StalenessCorrection

#: The dense synthetic stream: 100 nodes, 20k events, Zipf exponent 1 (at
#: batch 200 a typical node is in most batches).
DENSE = "synthetic:events=20000,nodes=100,alpha=1.0,msg_dim=16,seed=0"
CELLS = ("fixed", "refresh", "online", "online-refresh")


def load(dataset: str):
    return load_spec(DENSE) if dataset == "dense" else load_named(dataset)


def loader_options(cell: str, bound: int) -> dict:
    schedule = "online" if cell.startswith("online") else "fixed"
    return {"staleness_bound": bound, "schedule": schedule,
            "correction": StalenessCorrection(lag=0) if cell.endswith("refresh") else False}


def run(dataset: str, seed: int, bound: int, cell: str, batch_size: int, patience: int,
        max_epochs: int) -> dict:
    data = load(dataset)
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    gc.collect()
    torch.manual_seed(seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1))
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    train_loader = TemporalDataLoader(
        train_data, batch_size=batch_size, neg_sampling_ratio=1.0, memory=model.memory,
        neighbor_loader=neighbor_loader, prefetch=2, **loader_options(cell, bound))
    val_loader, test_loader = (
        TemporalDataLoader(d, batch_size=batch_size, neg_sampling_ratio=1.0, prefetch=0)
        for d in (val_data, test_data))
    begin = time.perf_counter()
    curve = []
    best = None
    for epoch in range(1, max_epochs + 1):
        loss = train_epoch(model, train_loader, neighbor_loader, data)
        summary = train_loader.stats.summary()
        val_ap, _ = evaluate(model, val_loader, neighbor_loader, data)
        test_ap, test_auc = evaluate(model, test_loader, neighbor_loader, data)
        curve.append({"epoch": epoch, "loss": loss, "val_ap": val_ap, "test_ap": test_ap,
                      "mean_staleness": summary["mean_staleness"],
                      "mean_refreshed_staleness": summary["mean_refreshed_staleness"],
                      "s_min": summary["s_min"]})
        if best is None or val_ap > best["val_ap"]:
            best = curve[-1] | {"test_auc": test_auc}
        elif epoch - best["epoch"] >= patience:
            break
    return {"dataset": dataset, "seed": seed, "bound": bound, "cell": cell,
            "batch_size": batch_size, "patience": patience, "max_epochs": max_epochs,
            "best_epoch": best["epoch"], "epochs_run": len(curve),
            "capped": len(curve) == max_epochs and best["epoch"] > max_epochs - patience,
            "test_ap": best["test_ap"], "test_auc": best["test_auc"], "val_ap": best["val_ap"],
            "mean_staleness": best["mean_staleness"],
            "mean_refreshed_staleness": best["mean_refreshed_staleness"],
            "s_min": best["s_min"], "curve": curve, "seconds": time.perf_counter() - begin}


def key(r: dict) -> tuple:
    return (r["dataset"], r["batch_size"], r["bound"], r["cell"])


def table(rows: list[dict]) -> str:
    out = ["| dataset | batch | s | cell | realised staleness (after refresh) | "
           "test AP at best val epoch (mean ± sd) | per seed | drop vs s=0 (points) | "
           "best epoch (per seed) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k in sorted({key(r) for r in rows}, key=lambda k: (k[0], k[1], k[3] != "fixed",
                                                             k[3], k[2])):
        sel = sorted((r for r in rows if key(r) == k), key=lambda r: r["seed"])
        base = {r["seed"]: r["test_ap"] for r in rows
                if key(r) == (k[0], k[1], 0, "fixed")}
        aps = [100 * r["test_ap"] for r in sel]
        drops = [100 * (base[r["seed"]] - r["test_ap"]) for r in sel if r["seed"] in base]
        sd = statistics.stdev(aps) if len(aps) > 1 else 0.0
        stal = statistics.mean(r["mean_staleness"] for r in sel)
        fresh = [r["mean_refreshed_staleness"] for r in sel
                 if r["mean_refreshed_staleness"] is not None]
        realised = f"{stal:.2f}" + (f" ({statistics.mean(fresh):.2f})" if fresh else "")
        epochs = ", ".join(f"{r['best_epoch']}{'*' if r['capped'] else ''}" for r in sel)
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {realised} | "
                   f"{statistics.mean(aps):.2f} ± {sd:.2f} | "
                   f"{', '.join(f'{a:.2f}' for a in aps)} | "
                   f"{(f'{statistics.mean(drops):+.2f}' if drops else 'n/a')} | {epochs} |")
    return "\n".join(out)


def plot(rows: list[dict], path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted({key(r) for r in rows})
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, k in enumerate(keys):
        for j, r in enumerate(sorted((r for r in rows if key(r) == k), key=lambda r: r["seed"])):
            epochs = [c["epoch"] for c in r["curve"]]
            label = f"{k[0]} b{k[1]} s={k[2]} {k[3]}" if j == 0 else None
            color = colors[n % len(colors)]
            ax_loss.plot(epochs, [c["loss"] for c in r["curve"]], color=color, label=label,
                         alpha=0.8)
            ax_ap.plot(epochs, [100 * c["val_ap"] for c in r["curve"]], color=color,
                       alpha=0.8)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("train loss (per event)")
    ax_ap.set_xlabel("epoch")
    ax_ap.set_ylabel("validation AP (%)")
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def ident(r: dict) -> tuple:
    return key(r) + (r["seed"], r["patience"], r["max_epochs"])


def read(out: Path) -> list[dict]:
    r"""The rows of --out, the first of each run only."""
    rows, seen = [], set()
    for line in (out.read_text().splitlines() if out.exists() else []):
        r = json.loads(line)
        if ident(r) not in seen:
            seen.add(ident(r))
            rows.append(r)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="college",
                        choices=["college", "wikipedia", "dense"])
    parser.add_argument("--bounds", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--cells", nargs="+", default=["fixed", "refresh"], choices=CELLS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/staleness_convergence.jsonl")
    parser.add_argument("--plot", default=None, help="loss curves PNG of the table's rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for bound in args.bounds:
            for cell in args.cells:
                if bound == 0 and cell != "fixed":
                    continue  # (s=0: nothing to correct; the same run)
                k = (args.dataset, args.batch_size, bound, cell, seed, args.patience,
                     args.max_epochs)
                if k in {ident(r) for r in read(out)}:  # (re-read: runs may share --out)
                    continue
                row = run(args.dataset, seed, bound, cell, args.batch_size, args.patience,
                          args.max_epochs)
                print(json.dumps({x: v for x, v in row.items() if x != "curve"}), flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    sel = [r for r in read(out) if r["dataset"] == args.dataset
           and r["batch_size"] == args.batch_size]
    print(table(sel))
    if args.plot:
        plot(sel, args.plot)


if __name__ == "__main__":
    main()
