"""Shared helpers of the benchmark scripts: data, timing, reporting.

Contenders run in one process, alternating (the order flips every round), and
ratios are medians of per-round ratios: these machines are noisy.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pyg_mspipe.datasets import load_college_msg, load_wikipedia
from pyg_mspipe.engine.data import find_data_file
from pyg_mspipe.engine.timing import PhaseTimer
from pyg_mspipe.engine.training import train_epoch

WIKIPEDIA_FILE = "wikipedia_edges.csv.gz"


def find_wikipedia() -> Path | None:
    """The Wikipedia file of the project layout (find_data_file)."""
    return find_data_file(WIKIPEDIA_FILE)


def load_dataset(name: str):
    """Wikipedia with seeded random 172-dim features (found with
    find_wikipedia), or the bundled CollegeMsg with seeded random 16-dim
    features."""
    if name == "wikipedia":
        return load_wikipedia(find_wikipedia(), msg_dim=172, features="random", seed=0)
    if name == "college":
        return load_college_msg(msg_dim=16, features="random", seed=0)
    raise ValueError(name)


def platform_line(device: torch.device) -> str:
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"device {device} ({dev or platform.machine()})")


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", default="wikipedia", choices=["wikipedia", "college"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--max-events", type=int, default=None,
                        help="train on the first N training events only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--phases", action="store_true",
                        help="synchronise CUDA at phase boundaries (CPU: always exact)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def prepare(args):
    device = torch.device(args.device)
    data = load_dataset(args.dataset)
    train_data, _, _ = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    if args.max_events:
        train_data = train_data[: args.max_events]
    print(platform_line(device))
    print(f"dataset={args.dataset} train_events={train_data.num_events} "
          f"batch_size={args.batch_size} rounds={args.rounds}", flush=True)
    return device, data, train_data


Setup = Callable[[], tuple]  # () -> (model, loader, neighbor_loader)

#: The last compare() run's rounds: name -> [(epoch seconds, phases), ...].
RESULTS: dict[str, list] = {}


def timed_epoch(setup: Setup, data, device, phases: bool):
    model, loader, neighbor_loader = setup()
    timer = PhaseTimer(device if phases else None)
    losses: list[float] = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(model, loader, neighbor_loader, data, device=device, timer=timer,
                losses=losses)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, dict(timer.seconds), losses


def compare(contenders: dict[str, Callable[[object], Setup]], data, train_data, args, device,
            phase_of_interest: str | None = None):
    """Alternates the contenders over `args.rounds` epochs each and prints
    the per-phase medians and the median per-round ratios (first contender
    over each other one). `contenders[name](train_data)` returns a setup."""
    names = list(contenders)
    warm = train_data[: min(2000, train_data.num_events)]
    for name in names:  # warm-up: allocator, kernels, lazy imports
        timed_epoch(contenders[name](warm), data, device, args.phases)
    results = {name: [] for name in names}
    losses = {}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            epoch_s, phases, batch_losses = timed_epoch(contenders[name](train_data), data,
                                                        device, args.phases)
            results[name].append((epoch_s, phases))
            losses[name] = batch_losses
            phase_str = " ".join(f"{k}={v:.2f}" for k, v in sorted(phases.items()))
            print(f"round {r} {name:5s} epoch={epoch_s:7.2f}s  {phase_str}", flush=True)

    def med(name, key=None):
        return statistics.median(e if key is None else p.get(key, 0.0)
                                 for e, p in results[name])

    RESULTS.clear()
    RESULTS.update(results)
    base = names[0]
    print("\nmedian seconds per epoch (phase breakdown):")
    keys = sorted({k for n in names for _, p in results[n] for k in p})
    print(f"{'phase':>15s} " + " ".join(f"{n:>9s}" for n in names))
    for k in keys + [None]:
        print(f"{k or 'epoch':>15s} " + " ".join(f"{med(n, k):9.3f}" for n in names))
    summary = {}
    for other in names[1:]:
        ratio = statistics.median(b[0] / o[0] for b, o in zip(results[base], results[other]))
        summary[f"epoch {base}/{other}"] = ratio
        print(f"\ntraining epoch speed-up {other} vs {base} (median of per-round ratios): "
              f"{ratio:.2f}x")
        if phase_of_interest:
            ratio = statistics.median(b[1][phase_of_interest] / o[1][phase_of_interest]
                                      for b, o in zip(results[base], results[other]))
            summary[f"{phase_of_interest} {base}/{other}"] = ratio
            share = med(base, phase_of_interest) / med(base)
            print(f"{phase_of_interest} phase: {100 * share:.1f}% of the {base} epoch; "
                  f"speed-up {ratio:.2f}x (median of per-round ratios)")
        diffs = [abs(a - b) for a, b in zip(losses[base], losses[other])]
        print(f"per-batch loss {base} vs {other}: max |diff| = {max(diffs):.3g} over "
              f"{len(diffs)} batches (first batch {diffs[0]:.3g}); mean loss "
              f"{statistics.fmean(losses[base]):.6f} vs {statistics.fmean(losses[other]):.6f}")
    return summary


def interleaved_rounds(what: str, rounds: int, run: Callable[[], tuple[dict, str]]) -> float:
    """Runs `run()` (one epoch of PyG and ours interleaved batch by batch;
    returns their seconds as {"pyg": s, "ours": s} and a note) `rounds`
    times, prints each round's ratio and returns the median."""
    ratios = []
    for r in range(rounds):
        seconds, note = run()
        ratios.append(seconds["pyg"] / seconds["ours"])
        print(f"round {r}: {what} pyg={seconds['pyg']:.2f}s ours={seconds['ours']:.2f}s "
              f"ratio={ratios[-1]:.2f}x{note}", flush=True)
    median = statistics.median(ratios)
    print(f"\n{what} speed-up, interleaved per batch (median over epochs): {median:.2f}x")
    return median
