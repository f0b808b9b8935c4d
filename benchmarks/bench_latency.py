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

import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, base_parser, compare, prepare  # noqa: E402

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader  # noqa: E402
from pyg_mspipe.engine.training import build_tgn  # noqa: E402
from pyg_mspipe.pipeline import hook_stages  # noqa: E402

#: The scheduler's record of the last online+lat epoch.
PICKED: list[dict] = []


def contender(latency: float, options: dict, data, args, device):
    def make(train_data):
        def setup():
            gc.collect()
            torch.manual_seed(args.seed)
            model = build_tgn(data.num_nodes, data.msg.size(-1), device=device)
            if latency > 0:
                hook_stages(model.memory, lambda stage: time.sleep(latency))
            nl = LastNeighborLoader(data.num_nodes, size=10, device=device)
            extra = {}
            if options:
                extra = dict(options, prefetch=2, memory=model.memory, neighbor_loader=nl)
            loader = TemporalDataLoader(train_data, batch_size=args.batch_size,
                                        neg_sampling_ratio=1.0,
                                        generator=torch.Generator().manual_seed(args.seed),
                                        **extra)
            if options:
                PICKED.append(loader)
            return model, loader, nl
        return setup
    return make


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
    contenders = {"seq": contender(0.0, {}, data, args, device),
                  "seq+lat": contender(latency, {}, data, args, device),
                  "online+lat": contender(latency, online, data, args, device)}
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
