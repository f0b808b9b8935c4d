"""Epoch time of PyG's examples/tgn.py loop: PyG sequential, ours without
the pipeline, ours through the pipeline at s = 0 and with the online
scheduler (bound --bound; it picks min(s_min, bound)), both with the
pipeline's threads (prefetch=2), and the online scheduler with the default
prefetch="auto" (which runs the epoch sequentially where the threads have no
CPU core to run on); and the compute-only floor: the same training steps on
batches and neighbour samples staged before the clock starts.

One process, contenders alternate (order flipped every round), each epoch
starts from the same seed. For the pipelined contenders the realised
staleness, the scheduler's s_min and the share of memory fetch/write-back
time hidden behind training (from loader.stats) are printed too.

    python benchmarks/bench_pipeline.py --dataset wikipedia --rounds 3
    python benchmarks/bench_pipeline.py --device cuda --storage cpu   # GPU, host memory

--timeline PREFIX saves a Gantt chart of each pipelined contender's last
epoch (batches 100 to 119, or the first 20 of a shorter epoch) to
PREFIX<name>.png (needs matplotlib; a failure to draw is printed, not fatal).
"""
from __future__ import annotations

import gc
import re
import statistics
import sys
from pathlib import Path

import torch
import torch_geometric.loader
import torch_geometric.nn
import torch_geometric.nn.models.tgn as pyg_tgn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, base_parser, compare, prepare  # noqa: E402

import pyg_mspipe  # noqa: E402
from pyg_mspipe.engine.training import build_tgn  # noqa: E402

STATS: dict[str, list] = {}


class Replay:
    """A neighbour loader that replays samples recorded beforehand (for the
    compute-only floor: no sampling in the timed loop)."""

    def __init__(self, samples):
        self.samples = samples
        self.index = 0

    def reset_state(self):
        self.index = 0

    def __call__(self, n_id):
        sample = self.samples[self.index]
        self.index += 1
        return sample

    def insert(self, src, dst):
        pass


def floor_contender(data, args, device):
    """The same training steps on pre-staged batches: batches, negatives and
    neighbour samples prepared (and moved to the device) before the clock
    starts; memory, embedding, loss, write-back, backward and step timed."""
    def for_data(train_data):
        def setup():
            gc.collect()
            torch.manual_seed(args.seed)
            model = build_tgn(data.num_nodes, data.msg.size(-1), device=device)
            sampler = pyg_mspipe.LastNeighborLoader(data.num_nodes, size=10, device=device)
            loader = pyg_mspipe.TemporalDataLoader(train_data, batch_size=args.batch_size,
                                                   neg_sampling_ratio=1.0, prefetch=0,
                                                   neighbor_loader=None, memory=None)
            batches, samples = [], []
            for batch in loader:
                batch = batch.to(device)
                samples.append(sampler(batch.n_id))
                sampler.insert(batch.src, batch.dst)
                batches.append(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return model, batches, Replay(samples)
        return setup
    return for_data


def contender(name, data, args, device, pyg=False, **loader_kwargs):
    def for_data(train_data):
        def setup():
            gc.collect()
            torch.manual_seed(args.seed)
            if pyg:
                model = build_tgn(data.num_nodes, data.msg.size(-1),
                                  memory_cls=torch_geometric.nn.TGNMemory, device=device)
                neighbor_loader = pyg_tgn.LastNeighborLoader(data.num_nodes, size=10,
                                                             device=device)
                loader = torch_geometric.loader.TemporalDataLoader(
                    train_data, batch_size=args.batch_size, neg_sampling_ratio=1.0)
                return model, loader, neighbor_loader
            extra = {} if args.storage is None else {"storage": args.storage}
            model = build_tgn(data.num_nodes, data.msg.size(-1), device=device, **extra)
            neighbor_loader = pyg_mspipe.LastNeighborLoader(data.num_nodes, size=10,
                                                            device=device)
            loader = pyg_mspipe.TemporalDataLoader(
                train_data, batch_size=args.batch_size, neg_sampling_ratio=1.0,
                memory=model.memory, neighbor_loader=neighbor_loader, **loader_kwargs)
            if loader_kwargs.get("staleness_bound") is not None:
                STATS.setdefault(name, []).append(loader)
            return model, loader, neighbor_loader
        return setup
    return for_data


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--bound", type=int, default=4)
    parser.add_argument("--storage", default=None, choices=[None, "cpu"])
    parser.add_argument("--timeline", default=None, metavar="PREFIX",
                        help="save each pipelined contender's Gantt chart to PREFIX<name>.png")
    args = parser.parse_args(argv)
    device, data, train_data = prepare(args)
    contenders = {
        "pyg": contender("pyg", data, args, device, pyg=True),
        "ours": contender("ours", data, args, device),
        # (prefetch=2: the pipeline's threads even where "auto" would run the
        # epoch sequentially, i.e. on a CPU without a spare core)
        "s=0": contender("s=0", data, args, device, staleness_bound=0, prefetch=2),
        f"online{args.bound}": contender(f"online{args.bound}", data, args, device,
                                         staleness_bound=args.bound, prefetch=2),
        # the default prefetch="auto": sequential where the threads have no room
        "auto": contender("auto", data, args, device, staleness_bound=args.bound),
        "floor": floor_contender(data, args, device),
    }
    compare(contenders, data, train_data, args, device)
    print("\nepoch time over the compute-only floor (pre-staged batches), "
          "median of per-round ratios:")
    for name in contenders:
        if name != "floor":
            ratios = [a[0] / b[0] for a, b in zip(RESULTS[name], RESULTS["floor"])]
            print(f"  {name}: {statistics.median(ratios):.3f}")
    print("\npipeline statistics (last full epoch of each):")
    for name, loaders in STATS.items():
        s = loaders[-1].stats.summary()
        share = "n/a" if s["hidden_share"] is None else f"{100 * s['hidden_share']:.0f}%"
        taus = {k: (None if v is None else round(1e3 * v, 2))
                for k, v in loaders[-1].stats.taus.items()}
        print(f"{name}: mode={s['mode'].split(':')[0]} s_min={s['s_min']} max_staleness={s['max_staleness']} "
              f"mean_staleness={s['mean_staleness']:.2f} histogram={s['histogram']} "
              f"stall={s['stall_seconds']:.2f}s hidden_share={share} "
              f"tau_ms={taus}")
    if args.timeline:
        save_timelines(args.timeline)


def save_timelines(prefix: str):
    """Gantt chart of each pipelined contender's last epoch (20 batches)."""
    for name, loaders in STATS.items():
        stats = loaders[-1].stats
        first = 100 if len(stats.records) >= 120 else 0
        path = prefix + re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"
        try:
            fig = stats.plot_timeline(path, first=first, count=20)
            import matplotlib.pyplot as plt
            plt.close(fig)
            print(f"timeline {name}: {path}")
        except Exception as exc:  # (drawing is optional)
            print(f"timeline {name}: not drawn ({type(exc).__name__}: {exc})")


if __name__ == "__main__":
    main()
