"""PyG's examples/tgn.py with pyg_mspipe's TGNMemory.

The only change a PyG user makes is the import line::

    # from torch_geometric.nn import TGNMemory
    # from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator
    from pyg_mspipe import TGNMemory, IdentityMessage, LastAggregator

Runs on the bundled CollegeMsg data by default, or on the JODIE Wikipedia
stream (``--dataset wikipedia``, read from ``../shared/data`` or
``$PYG_MSPIPE_DATA``; 172-dim seeded random edge features):

    python examples/tgn.py --dataset college --epochs 2
"""
import argparse
import time

import torch
from torch_geometric.loader import TemporalDataLoader
from torch_geometric.nn.models.tgn import LastNeighborLoader

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory
from pyg_mspipe.datasets import load_college_msg, load_wikipedia
from pyg_mspipe.training import build_tgn, evaluate, train_epoch


def main():
    parser = argparse.ArgumentParser(description="TGN link prediction (PyG example)")
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    data = load_college_msg() if args.dataset == "college" else load_wikipedia()
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    loaders = [TemporalDataLoader(d, batch_size=args.batch_size, neg_sampling_ratio=1.0)
               for d in (train_data, val_data, test_data)]
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10, device=device)
    model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=TGNMemory,
                      message_cls=IdentityMessage, aggregator_cls=LastAggregator,
                      device=device)

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, loaders[0], neighbor_loader, data, device=device)
        seconds = time.perf_counter() - start
        val_ap, val_auc = evaluate(model, loaders[1], neighbor_loader, data, device=device)
        test_ap, test_auc = evaluate(model, loaders[2], neighbor_loader, data, device=device)
        print(f"Epoch {epoch:02d}  loss {loss:.4f}  train {seconds:.1f}s  "
              f"val AP {val_ap:.4f} AUC {val_auc:.4f}  test AP {test_ap:.4f} "
              f"AUC {test_auc:.4f}", flush=True)


if __name__ == "__main__":
    main()
