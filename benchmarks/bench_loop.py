"""PyG's examples/tgn.py training loop versus the same loop with only its
imports swapped to pyg_mspipe (TGNMemory, TemporalDataLoader with its default
prefetch="auto", LastNeighborLoader; --prefetch N forces a depth).

One process, the contenders alternate (order flipped every round), each epoch
starts from the same seed. PyG draws negatives from the global RNG, ours from
a generator seeded from it, so losses agree in distribution, not batch by
batch (tests/pyg/test_example_loop.py checks exact equality).

    python benchmarks/bench_loop.py --dataset wikipedia --rounds 5
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

import torch
import torch_geometric.loader
import torch_geometric.nn
import torch_geometric.nn.models.tgn as pyg_tgn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, compare, prepare  # noqa: E402

import pyg_mspipe  # noqa: E402
from pyg_mspipe.engine.training import build_tgn  # noqa: E402

PYG = (torch_geometric.nn.TGNMemory, torch_geometric.loader.TemporalDataLoader,
       pyg_tgn.LastNeighborLoader)
OURS = (pyg_mspipe.TGNMemory, pyg_mspipe.TemporalDataLoader, pyg_mspipe.LastNeighborLoader)


def contender(classes, data, args, device):
    memory_cls, loader_cls, nl_cls = classes

    def for_data(train_data):
        def setup():
            gc.collect()  # so that neighbor_loader="auto" finds exactly one
            torch.manual_seed(args.seed)
            model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=memory_cls,
                              device=device)
            neighbor_loader = nl_cls(data.num_nodes, size=10, device=device)
            extra = {}
            if loader_cls is OURS[1] and args.prefetch is not None:
                extra["prefetch"] = args.prefetch
            loader = loader_cls(train_data, batch_size=args.batch_size, neg_sampling_ratio=1.0,
                                **extra)
            return model, loader, neighbor_loader
        return setup
    return for_data


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--prefetch", type=int, default=None,
                        help="our loader's prefetch depth (default: its own 'auto')")
    args = parser.parse_args(argv)
    device, data, train_data = prepare(args)
    compare({"pyg": contender(PYG, data, args, device),
             "ours": contender(OURS, data, args, device)},
            data, train_data, args, device)


if __name__ == "__main__":
    main()
