"""What the pipeline is for, by emulation: a latency on the memory's fetch
and write-back (a sleep through the ``TGNMemory.steps`` seam, with
``pyg_mspipe.pipeline.hook_stages``), standing in for a host-to-GPU copy or
a remote memory shard. The sequential loop pays it on every batch; the
pipeline's worker pays it off the training thread, and the online schedule
picks the smallest staleness bound that hides it.

Contenders (PyG's example TGN, alternating, order flipped every round):
``seq`` sequential without latency (the baseline), ``seq+lat`` sequential
with the latency, ``online+lat`` the online pipeline (bound --bound) with
the latency. Prints each one's median epoch, the ratios, and the bound the
scheduler picked. This is an emulation: a sleep releases the CPU, which a
real copy on this machine would not.

    python benchmarks/bench_latency.py --dataset wikipedia --latency-ms 5 --rounds 3
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import contender  # noqa: E402
from common import RESULTS, base_parser, compare, prepare  # noqa: E402

from pyg_mspipe.pipeline import hook_stages  # noqa: E402

#: The loaders of the online+lat epochs (their scheduler's record).
PICKED: list = []


def with_latency(latency: float, record: bool = False):
    def on_setup(model, loader):
        if latency > 0:
            hook_stages(model.memory, lambda stage: time.sleep(latency))
        if record:
            PICKED.append(loader)
    return on_setup


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=5.0,
                        help="added to every fetch and every write-back")
    parser.add_argument("--bound", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, data, train_data = prepare(args)
    latency = args.latency_ms / 1000
    online = {"staleness_bound": args.bound, "schedule": "online"}
    contenders = {"seq": contender("tgn", {}, data, args, device),
                  "seq+lat": contender("tgn", {}, data, args, device, with_latency(latency)),
                  "online+lat": contender("tgn", online, data, args, device,
                                          with_latency(latency, record=True))}
    compare(contenders, data, train_data, args, device)
    seconds = {c: statistics.median(e for e, _ in RESULTS[c]) for c in contenders}
    stats = PICKED[-1].stats.summary()
    print(f"\nonline+lat: s_min picked {stats['s_min']}, mean staleness "
          f"{stats['mean_staleness']:.2f}, histogram {stats['histogram']}")
    print("\n| contender | median epoch (s) | events/s | epoch / seq |")
    print("| --- | ---: | ---: | ---: |")
    for c in contenders:
        print(f"| {c} | {seconds[c]:.2f} | {train_data.num_events / seconds[c]:.0f} | "
              f"{seconds[c] / seconds['seq']:.2f}x |")


if __name__ == "__main__":
    main()
