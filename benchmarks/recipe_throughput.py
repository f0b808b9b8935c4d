"""Training throughput of the two TGN recipes of ``pyg-mspipe train``
(``--recipe pyg`` and ``--recipe dyglib``) on CollegeMsg, side by side in
one process: their epochs advance batch by batch in turn
(``engine.compare.interleaved_epoch``), so that a shared machine's slow and
fast phases hit both alike. Prints training events/s per epoch and recipe,
and the median ratio.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/recipe_throughput.py --epochs 3
"""
from __future__ import annotations

import argparse
import statistics

from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.run import setup_run
from pyg_mspipe.engine.compare import interleaved_epoch
from pyg_mspipe.engine.recipes import event_train_steps
from pyg_mspipe.engine.training import train_steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="college")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    runs = {r: setup_run(TrainConfig(data=args.data, recipe=r, threads=args.threads))
            for r in ("pyg", "dyglib")}
    num_events = runs["pyg"].split.train.num_events
    rates = {r: [] for r in runs}
    for epoch in range(1, args.epochs + 1):
        steps = {"pyg": train_steps(runs["pyg"].model, runs["pyg"].train_loader,
                                    runs["pyg"].neighbor_loader, runs["pyg"].split.stream),
                 "dyglib": event_train_steps(runs["dyglib"].model,
                                             runs["dyglib"].train_loader,
                                             runs["dyglib"].split.stream)}
        seconds = interleaved_epoch(steps)
        for r, s in seconds.items():
            rates[r].append(num_events / s)
        print(f"epoch {epoch}: " + ", ".join(f"{r} {rates[r][-1]:.0f} events/s"
                                             for r in rates), flush=True)
    ratio = statistics.median(p / d for p, d in zip(rates["pyg"], rates["dyglib"]))
    print(f"median training events/s: pyg {statistics.median(rates['pyg']):.0f}, "
          f"dyglib {statistics.median(rates['dyglib']):.0f}; pyg / dyglib {ratio:.2f}")


if __name__ == "__main__":
    main()
