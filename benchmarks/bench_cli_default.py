"""The default `pyg-mspipe train` run against PyG's own example loop on the
same data and settings.

PyG's side is examples/tgn.py as PyG ships it: torch_geometric's TGNMemory,
IdentityMessage, LastAggregator, LastNeighborLoader and TemporalDataLoader,
with the engine's train_epoch/evaluate (PyG's loop), seeded with the same
seed, on the same CollegeMsg data (16-dim seeded features), split 70/15/15,
batch 200, memory/embedding/time dim 100, lr 1e-4, 10 neighbours. Ours is
`pyg-mspipe train` with its defaults (run_training of the same
configuration). Both report per epoch the test AP; the summary gives the
test AP at the best validation epoch and at the last epoch, and the time.

    python benchmarks/bench_cli_default.py --epochs 8 --seeds 12345 0 1
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch_geometric.loader
import torch_geometric.nn
import torch_geometric.nn.models.tgn as pyg_tgn

from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.run import setup_run
from pyg_mspipe.cli.train import run_training
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch


def pyg_example(config: TrainConfig) -> dict:
    """PyG's examples/tgn.py with PyG's classes; per-epoch metrics."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    data = resolve_data(config.data)
    train_data, val_data, test_data = data.train_val_test_split(
        val_ratio=config.val_ratio, test_ratio=config.test_ratio)
    neighbor_loader = pyg_tgn.LastNeighborLoader(data.num_nodes, size=config.neighbors)
    model = build_tgn(data.num_nodes, data.msg.size(-1),
                      memory_cls=torch_geometric.nn.TGNMemory,
                      message_cls=pyg_tgn.IdentityMessage,
                      aggregator_cls=pyg_tgn.LastAggregator, memory_dim=config.memory_dim,
                      time_dim=config.time_dim, embedding_dim=config.embedding_dim,
                      lr=config.lr)
    loaders = [torch_geometric.loader.TemporalDataLoader(d, batch_size=config.batch_size,
                                                         neg_sampling_ratio=1.0)
               for d in (train_data, val_data, test_data)]
    epochs = []
    for epoch in range(1, config.epochs + 1):
        loss = train_epoch(model, loaders[0], neighbor_loader, data)
        val_ap, _ = evaluate(model, loaders[1], neighbor_loader, data)
        test_ap, _ = evaluate(model, loaders[2], neighbor_loader, data)
        epochs.append({"epoch": epoch, "loss": loss, "val_ap": val_ap, "test_ap": test_ap})
        print(f"  pyg  epoch {epoch}: loss {loss:.4f} val AP {val_ap:.4f} test AP "
              f"{test_ap:.4f} ({time.perf_counter() - start:.0f}s)", flush=True)
    return {"epochs": epochs, "seconds": time.perf_counter() - start}


def ours(config: TrainConfig) -> dict:
    """`pyg-mspipe train` with this configuration (no progress, no table)."""
    start = time.perf_counter()
    summary = run_training(setup_run(config), show_progress=False,
                           echo=lambda line: print(f"  ours {line}", flush=True))
    epochs = [{"epoch": r.epoch, "loss": r.loss, "val_ap": r.val["ap"],
               "test_ap": r.test["ap"]} for r in summary.epochs]
    return {"epochs": epochs, "seconds": time.perf_counter() - start}


def report(name: str, result: dict) -> dict:
    best = max(result["epochs"], key=lambda e: e["val_ap"])
    last = result["epochs"][-1]
    curve = " ".join(f"{e['test_ap']:.4f}" for e in result["epochs"])
    print(f"{name:4s} test AP per epoch: {curve}")
    print(f"{name:4s} best val epoch {best['epoch']}: test AP {best['test_ap']:.4f}; "
          f"last epoch test AP {last['test_ap']:.4f}; {result['seconds']:.1f}s", flush=True)
    return {"best_epoch": best["epoch"], "best_test_ap": best["test_ap"],
            "last_test_ap": last["test_ap"], "seconds": result["seconds"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[TrainConfig.seed])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"epochs={args.epochs}", flush=True)
    rows = []
    for k, seed in enumerate(args.seeds):
        config = TrainConfig(epochs=args.epochs, seed=seed)
        runs = [("pyg", pyg_example), ("ours", ours)]
        results = {}
        for name, fn in (runs if k % 2 == 0 else runs[::-1]):  # order flips per seed
            print(f"seed {seed}: {name}", flush=True)
            results[name] = report(name, fn(config))
        rows.append({"seed": seed, **{f"{n}_{k}": v for n, r in results.items()
                                      for k, v in r.items()}})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
