"""Training events/s of the four memory models (TGN, JODIE, DyRep, APAN)
with PyG's example loop (``engine.training``), sequential and through the
MSPipe pipeline at staleness_bound 0, 2 (fixed schedule) and 2 with the
online scheduler (prefetch=2 for the pipelined ones).

One process; for each model the four contenders alternate (order flipped
every round), each epoch from the same seed; the median epoch time over
--rounds gives events/s, and the median per-round ratio sequential /
pipelined the speed-up.

    python benchmarks/bench_models.py --dataset college --rounds 3 --max-events 8000
"""
from __future__ import annotations

import gc
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, base_parser, compare, prepare  # noqa: E402

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader  # noqa: E402
from pyg_mspipe.engine.models import MODELS, build_model  # noqa: E402

CONTENDERS = {"seq": {}, "s0": {"staleness_bound": 0, "schedule": "fixed"},
              "s2": {"staleness_bound": 2, "schedule": "fixed"},
              "online": {"staleness_bound": 2, "schedule": "online"}}


def contender(name: str, options: dict, data, args, device, on_setup=None):
    r"""A setup maker for :func:`common.compare` (:obj:`on_setup(model,
    loader)`, if given, is called on every setup)."""
    def make(train_data):
        def setup():
            gc.collect()
            torch.manual_seed(args.seed)
            model = build_model(name, data.num_nodes, data.msg.size(-1), device=device)
            nl = (LastNeighborLoader(data.num_nodes, size=10, device=device)
                  if model.needs_neighbors else None)
            extra = {}
            if options:
                extra = dict(options, prefetch=2, memory=model.memory, neighbor_loader=nl)
            loader = TemporalDataLoader(train_data, batch_size=args.batch_size,
                                        neg_sampling_ratio=1.0,
                                        generator=torch.Generator().manual_seed(args.seed),
                                        **extra)
            if on_setup is not None:
                on_setup(model, loader)
            return model, loader, nl
        return setup
    return make


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS),
                        default=list(CONTENDERS),
                        help="which to run (seq first: the ratios are seq over each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, data, train_data = prepare(args)
    chosen = {c: CONTENDERS[c] for c in ["seq"] + [c for c in args.contenders if c != "seq"]}
    rows = []
    for name in args.models:
        print(f"\n=== {name}", flush=True)
        contenders = {c: contender(name, opts, data, args, device)
                      for c, opts in chosen.items()}
        summary = compare(contenders, data, train_data, args, device)
        seconds = {c: statistics.median(e for e, _ in RESULTS[c]) for c in chosen}
        rows.append((name, seconds, summary))
    print("\n| model | " + " | ".join(f"{c} events/s" for c in chosen)
          + " | " + " | ".join(f"seq/{c}" for c in list(chosen)[1:]) + " |")
    print("| --- " * (2 * len(chosen)) + "|")
    for name, seconds, summary in rows:
        rates = " | ".join(f"{train_data.num_events / seconds[c]:.0f}" for c in chosen)
        ratios = " | ".join(f"{summary[f'epoch seq/{c}']:.2f}x" for c in list(chosen)[1:])
        print(f"| {name} | {rates} | {ratios} |")


if __name__ == "__main__":
    main()
