"""PyG's TGNMemory versus pyg_mspipe.TGNMemory in PyG's examples/tgn.py loop.

One process, the contenders alternate (order flipped every round), each
training epoch starts from the same seed, so both see the same negatives and
dropout masks. Prints per-phase times, the median ratios of the memory
module's time (forward + update_state) and of the whole epoch, and the largest
per-batch loss difference.

    python benchmarks/bench_memory.py --dataset wikipedia --rounds 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.loader import TemporalDataLoader
from torch_geometric.nn import TGNMemory as PyGTGNMemory
from torch_geometric.nn.models.tgn import LastNeighborLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_dataset, platform_line  # noqa: E402

from pyg_mspipe import TGNMemory  # noqa: E402
from pyg_mspipe.timing import PhaseTimer  # noqa: E402
from pyg_mspipe.training import build_tgn, train_epoch  # noqa: E402

CONTENDERS = {"pyg": PyGTGNMemory, "ours": TGNMemory}


def run_epoch(name, data, train_data, args, device):
    torch.manual_seed(args.seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=CONTENDERS[name],
                      device=device)
    loader = TemporalDataLoader(train_data, batch_size=args.batch_size,
                                neg_sampling_ratio=1.0)
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10, device=device)
    timer = PhaseTimer(device if args.phases else None)
    losses: list[float] = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_epoch(model, loader, neighbor_loader, data, device=device, timer=timer,
                losses=losses)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, dict(timer.seconds), losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="wikipedia", choices=["wikipedia", "college"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--max-events", type=int, default=None,
                        help="train on the first N training events only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--phases", action="store_true",
                        help="synchronise CUDA at phase boundaries (CPU: always exact)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    data = load_dataset(args.dataset)
    train_data, _, _ = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    if args.max_events:
        train_data = train_data[: args.max_events]
    print(platform_line(device))
    print(f"dataset={args.dataset} train_events={train_data.num_events} "
          f"batch_size={args.batch_size} rounds={args.rounds}")

    # Warm-up (allocator, kernels, lazy imports): one short epoch each.
    warm = argparse.Namespace(**{**vars(args), "max_events": 2000})
    for name in CONTENDERS:
        run_epoch(name, data, train_data[:2000], warm, device)

    results = {name: [] for name in CONTENDERS}
    losses = {}
    for r in range(args.rounds):
        order = list(CONTENDERS) if r % 2 == 0 else list(CONTENDERS)[::-1]
        for name in order:
            epoch_s, phases, batch_losses = run_epoch(name, data, train_data, args, device)
            results[name].append((epoch_s, phases))
            losses[name] = batch_losses
            phase_str = " ".join(f"{k}={v:.2f}" for k, v in sorted(phases.items()))
            print(f"round {r} {name:5s} epoch={epoch_s:7.2f}s  {phase_str}", flush=True)

    def med(name, key=None):
        vals = [e if key is None else p.get(key, 0.0) for e, p in results[name]]
        return statistics.median(vals)

    ratios_epoch = [p[0] / o[0] for p, o in zip(results["pyg"], results["ours"])]
    ratios_mem = [p[1]["memory"] / o[1]["memory"]
                  for p, o in zip(results["pyg"], results["ours"])]
    print("\nmedian seconds per epoch (phase breakdown):")
    phases = sorted({k for _, p in results["pyg"] for k in p})
    print(f"{'phase':>15s} {'pyg':>9s} {'ours':>9s} {'ratio':>7s}")
    for k in phases + [None]:
        a, b = med("pyg", k), med("ours", k)
        print(f"{k or 'epoch':>15s} {a:9.3f} {b:9.3f} {a / b if b else float('nan'):7.2f}")
    share = med("pyg", "memory") / med("pyg")
    print(f"\nPyG memory module share of its epoch: {100 * share:.1f}%")
    print(f"memory module speed-up (median of per-round ratios): "
          f"{statistics.median(ratios_mem):.2f}x")
    print(f"training epoch speed-up (median of per-round ratios): "
          f"{statistics.median(ratios_epoch):.2f}x")
    diffs = [abs(a - b) for a, b in zip(losses["pyg"], losses["ours"])]
    print(f"per-batch loss: max |pyg - ours| = {max(diffs):.3g} over {len(diffs)} batches "
          f"(first batch {diffs[0]:.3g}); mean loss pyg={statistics.fmean(losses['pyg']):.6f} "
          f"ours={statistics.fmean(losses['ours']):.6f}")


if __name__ == "__main__":
    main()
