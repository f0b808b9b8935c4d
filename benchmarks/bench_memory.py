"""PyG's TGNMemory versus pyg_mspipe.TGNMemory in PyG's examples/tgn.py loop.

Everything else is PyG's (TemporalDataLoader, LastNeighborLoader, the
TransformerConv embedding). One process, the contenders alternate (order
flipped every round), each epoch starts from the same seed, so both see the
same negatives and dropout masks. Prints per-phase medians, the median ratios
of the memory module's time (forward + update_state) and of the whole epoch,
and the largest per-batch loss difference.

    python benchmarks/bench_memory.py --dataset wikipedia --rounds 5
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch_geometric.loader import TemporalDataLoader
from torch_geometric.nn import TGNMemory as PyGTGNMemory
from torch_geometric.nn.models.tgn import LastNeighborLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, compare, prepare  # noqa: E402

from pyg_mspipe import TGNMemory  # noqa: E402
from pyg_mspipe.engine.training import build_tgn  # noqa: E402


def contender(memory_cls, data, args, device):
    def for_data(train_data):
        def setup():
            torch.manual_seed(args.seed)
            model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=memory_cls,
                              device=device)
            loader = TemporalDataLoader(train_data, batch_size=args.batch_size,
                                        neg_sampling_ratio=1.0)
            return model, loader, LastNeighborLoader(data.num_nodes, size=10, device=device)
        return setup
    return for_data


def main(argv=None):
    args = base_parser(__doc__.splitlines()[0]).parse_args(argv)
    device, data, train_data = prepare(args)
    compare({"pyg": contender(PyGTGNMemory, data, args, device),
             "ours": contender(TGNMemory, data, args, device)},
            data, train_data, args, device, phase_of_interest="memory")


if __name__ == "__main__":
    main()
