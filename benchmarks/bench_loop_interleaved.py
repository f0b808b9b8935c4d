"""PyG's examples/tgn.py training loop versus the same loop with its imports
swapped to pyg_mspipe, interleaved batch by batch.

The low-noise companion of bench_loop.py. Both loops (each with its own
model, loaders and neighbour loader, built from the same seed) run in one
process and advance one batch at a time, alternating which goes first, each
step timed from fetching its batch to the end of its optimizer step. The
machine's slow and fast phases (seconds long on these shared hosts) then hit
both alike. Prints, per epoch, the summed step seconds and their ratio, and
the median over epochs.

Our loader runs with its default prefetch="auto", which on a CPU without a
spare core resolves to sequential (see docs/benchmarks.md); a background
worker would run during the other loop's steps, so no --prefetch here.

    python benchmarks/bench_loop_interleaved.py --dataset wikipedia --rounds 5
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import OURS, PYG, contender  # noqa: E402
from common import base_parser, interleaved_rounds, prepare  # noqa: E402

from pyg_mspipe.engine.compare import interleaved_epoch  # noqa: E402
from pyg_mspipe.engine.training import train_steps  # noqa: E402


def epoch(setups, data, device) -> dict[str, float]:
    steps = {}
    for name, setup in setups.items():
        model, loader, neighbor_loader = setup()
        steps[name] = train_steps(model, loader, neighbor_loader, data, device=device)
    return interleaved_epoch(steps)


def main(argv=None):
    args = base_parser(__doc__.splitlines()[0]).parse_args(argv)
    args.prefetch = None
    device, data, train_data = prepare(args)
    warm = train_data[: min(2000, train_data.num_events)]
    epoch({"pyg": contender(PYG, data, args, device)(warm),
           "ours": contender(OURS, data, args, device)(warm)}, data, device)

    def run():
        return epoch({"pyg": contender(PYG, data, args, device)(train_data),
                      "ours": contender(OURS, data, args, device)(train_data)}, data, device), ""

    interleaved_rounds("training epoch", args.rounds, run)


if __name__ == "__main__":
    main()
