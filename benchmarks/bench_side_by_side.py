"""Training throughput of TGN on CollegeMsg, five codes side by side:
``pyg-mspipe train --recipe dyglib``, ``pyg-mspipe train --recipe pyg``,
DyGLib's own TGN, TGM's TGN example and PyG's ``examples/tgn.py`` loop.

Each contender runs as its own process for ``--epochs`` training epochs
(batch 200, one intra-op thread) and reports the training events/s of each
epoch, evaluation excluded:

- ``ours-dyglib`` / ``ours-pyg``: ``python -m pyg_mspipe train --recipe
  dyglib|pyg --negatives random --threads 1 --json ...``, its JSON's
  ``events_per_second`` (training events over the epoch's training time);
- ``dyglib``: DyGLib's ``train_link_prediction.py`` (``--load_best_configs``,
  dimension 172, on ``uci``) through ``dyglib_epoch_times.py``, which times
  its training loop;
- ``tgm``: ``tgm_tgn_college.py`` (TGM's example, ``tgm-lib`` 0.1.0b1) in
  TGM's virtual environment (``--tgm-python``);
- ``pyg-loop``: PyG's ``TGNMemory``, ``TemporalDataLoader`` and
  ``LastNeighborLoader`` in the loop of ``examples/tgn.py`` (``bench_loop.py``'s
  ``pyg`` contender; this script with ``--pyg-loop``).

- ``ours-dyglib-100``: ``--recipe dyglib`` at TGM's and PyG's sizes
  (``--memory-dim 100 --embedding-dim 100``); any ``ours-RECIPE-N`` runs
  that recipe with memory and embedding size ``N``.

A contender named ``NAME:tuned`` or ``NAME:glibc`` runs with glibc's malloc
set up in its environment: ``tuned`` as ``pyg-mspipe`` sets it up itself
(``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=67108864``,
``docs/cli.md``, "Memory allocator"), ``glibc`` with glibc's defaults
(``GLIBC_TUNABLES=``, which also keeps ``pyg-mspipe`` from changing them).
A plain ``NAME`` runs as shipped: ``pyg-mspipe`` tuned, the others with
glibc's defaults.

The contenders alternate in rounds (A, B, C, D, E, A, B, ...), so the slow
and fast phases of a shared machine fall on all of them; the table is the
median over every epoch of every round. Run it pinned to one core::

    OMP_NUM_THREADS=1 taskset -c 1 nice -n 5 python benchmarks/bench_side_by_side.py \\
        --rounds 3 --epochs 2 --dyglib-dir /path/to/DyGLib --tgm-python /work/venv-tgm/bin/python

One JSON line per contender run goes to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyg_mspipe.cli._allocator import MMAP_THRESHOLD, TRIM_THRESHOLD, USER_SETTINGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTENDERS = ("ours-dyglib", "ours-pyg", "dyglib", "tgm", "pyg-loop")
ALLOCATORS = {"tuned": {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
                        "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)},
              "glibc": {"GLIBC_TUNABLES": ""}}
_EPOCH = re.compile(r"epoch (\d+) train_seconds ([\d.]+) .*?events_per_second ([\d.]+)")


def pyg_loop(epochs: int, seed: int):
    # PyG's classes in examples/tgn.py's loop, timed per training epoch.
    import torch

    sys.path.insert(0, str(HERE))
    from bench_loop import PYG, contender
    from common import prepare, timed_epoch

    torch.set_num_threads(1)
    args = argparse.Namespace(dataset="college", batch_size=200, max_events=None,
                              device="cpu", seed=seed, rounds=1, prefetch=None)
    device, data, train_data = prepare(args)
    for epoch in range(1, epochs + 1):
        seconds, _, _ = timed_epoch(contender(PYG, data, args, device)(train_data), data,
                                    device, phases=False)
        print(f"epoch {epoch} train_seconds {seconds:.3f} "
              f"events_per_second {train_data.num_events / seconds:.1f}", flush=True)


def contender(spec: str) -> str:
    name, _, allocator = spec.partition(":")
    sized = re.fullmatch(r"ours-(dyglib|pyg)-[1-9]\d*", name) is not None
    if (name not in CONTENDERS and not sized) or (allocator and allocator not in ALLOCATORS):
        raise argparse.ArgumentTypeError(
            f"{spec!r}: expected NAME or NAME:ALLOCATOR, NAME one of {list(CONTENDERS)} "
            f"or ours-RECIPE-SIZE, "
            f"ALLOCATOR one of {list(ALLOCATORS)}")
    return spec


def command(name: str, args, json_path: Path) -> tuple[list[str], Path | None]:
    epochs = str(args.epochs)
    if name.startswith("ours-"):
        recipe, _, dim = name[5:].partition("-")
        sizes = ["--memory-dim", dim, "--embedding-dim", dim] if dim else []
        return [sys.executable, "-m", "pyg_mspipe", "train", "--recipe", recipe,
                "--negatives", "random", "--epochs", epochs, "--seed", "0", "--threads", "1",
                *sizes, "-q", "--json", str(json_path)], None
    if name == "dyglib":
        return [sys.executable, str(HERE / "dyglib_epoch_times.py"), "--",
                "--dataset_name", "uci", "--model_name", "TGN", "--load_best_configs",
                "--num_runs", "1", "--num_epochs", epochs, "--negative_sample_strategy",
                "random", "--test_interval_epochs", "1000", "--gpu", "-1"], args.dyglib_dir
    if name == "tgm":
        return [args.tgm_python, str(HERE / "tgm_tgn_college.py"), "--epochs", epochs,
                "--threads", "1"], None
    return [sys.executable, str(Path(__file__).resolve()), "--pyg-loop", "--epochs",
            epochs], None


def run_one(spec: str, args) -> dict:
    name, _, allocator = spec.partition(":")
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "run.json"
        cmd, cwd = command(name, args, json_path)
        env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
        env.update(ALLOCATORS.get(allocator, {}), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")])))
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        if name.startswith("ours-"):
            epochs = [e["events_per_second"]
                      for e in json.loads(json_path.read_text())["epochs"]]
        else:
            epochs = [float(m.group(3)) for m in _EPOCH.finditer(proc.stdout)]
        if len(epochs) != args.epochs:
            raise SystemExit(f"{name}: {len(epochs)} epoch times in its output, expected "
                             f"{args.epochs}:\n{proc.stdout[-3000:]}")
    return {"contender": spec, "events_per_second": epochs, "wall_seconds": wall,
            "load_1min": load, "command": " ".join(cmd), "cwd": str(cwd or ROOT)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--contenders", nargs="+", type=contender,
                        default=list(CONTENDERS), metavar="NAME[:ALLOCATOR]",
                        help=f"NAME of {list(CONTENDERS)} or ours-RECIPE-SIZE, "
                             f"ALLOCATOR of {list(ALLOCATORS)}")
    parser.add_argument("--dyglib-dir", type=Path, default=None,
                        help="DyGLib's checkout (with processed_data/uci)")
    parser.add_argument("--tgm-python", default="/work/venv-tgm/bin/python",
                        help="the Python of a virtual environment with tgm-lib")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=None, help="JSON lines go there")
    parser.add_argument("--pyg-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.pyg_loop:
        return pyg_loop(args.epochs, args.seed)
    if any(c.partition(":")[0] == "dyglib" for c in args.contenders) and args.dyglib_dir is None:
        parser.error("--dyglib-dir is needed for the dyglib contender")
    print(f"cpus {os.cpu_count()} affinity {sorted(os.sched_getaffinity(0))} "
          f"rounds {args.rounds} epochs {args.epochs}", flush=True)
    results = {name: [] for name in args.contenders}
    for r in range(1, args.rounds + 1):
        for name in args.contenders:
            record = dict(run_one(name, args), round=r)
            results[name] += record["events_per_second"]
            print(f"round {r} {name:18s} events/s "
                  f"{' '.join(f'{x:,.0f}' for x in record['events_per_second'])} "
                  f"(wall {record['wall_seconds']:.0f} s, load {record['load_1min']:.2f})",
                  flush=True)
            if args.out is not None:
                with args.out.open("a") as f:
                    f.write(json.dumps(record) + "\n")
    base = statistics.median(results[args.contenders[0]])
    print(f"\n| contender | training events/s, median of {args.rounds} x {args.epochs} "
          f"epochs | range | relative to {args.contenders[0]} |")
    print("| --- | --- | --- | --- |")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med:,.0f} | {min(values):,.0f} - {max(values):,.0f} | "
              f"{med / base:.2f} |")


if __name__ == "__main__":
    main()
