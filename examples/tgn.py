"""PyG's examples/tgn.py with pyg_mspipe's TGNMemory.

The only change a PyG user makes is the import line::

    # from torch_geometric.nn import TGNMemory
    # from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator
    from pyg_mspipe import TGNMemory, IdentityMessage, LastAggregator

Runs on the bundled CollegeMsg data by default, or on the JODIE Wikipedia
stream (``--dataset wikipedia``, read from ``../shared/data`` or
``$PYG_MSPIPE_DATA``; 172-dim seeded random edge features):

    python examples/tgn.py --dataset college --epochs 2

With ``--staleness-bound S`` the training loader is pyg_mspipe's, with the
MSPipe pipeline switched on (memory fetch up to S batches stale, exact
in-order write-back, online scheduler; ``--schedule fixed`` for a
deterministic schedule); the
pipeline's statistics are printed per epoch:

    python examples/tgn.py --dataset college --epochs 2 --staleness-bound 2
"""
import argparse
import time

import torch
from torch_geometric.loader import TemporalDataLoader
from torch_geometric.nn.models.tgn import LastNeighborLoader

import pyg_mspipe
from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory
from pyg_mspipe.datasets import load_college_msg, load_wikipedia
from pyg_mspipe.engine.data import find_data_file
from pyg_mspipe.engine.training import build_tgn, evaluate, train_epoch


def main():
    parser = argparse.ArgumentParser(description="TGN link prediction (PyG example)")
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--staleness-bound", type=int, default=None,
                        help="switch on the MSPipe pipeline with this staleness bound")
    parser.add_argument("--schedule", default="online", choices=["online", "fixed"])
    parser.add_argument("--storage", default=None, choices=["cpu"],
                        help="keep the memory in host memory (with --device cuda)")
    parser.add_argument("--timeline", default=None,
                        help="with --staleness-bound: save the last epoch's Gantt chart here")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    data = (load_college_msg() if args.dataset == "college"
            else load_wikipedia(find_data_file("wikipedia_edges.csv.gz")))
    train_data, val_data, test_data = data.train_val_test_split(val_ratio=0.15,
                                                                test_ratio=0.15)
    pipelined = args.staleness_bound is not None
    loader_cls = pyg_mspipe.TemporalDataLoader if pipelined else TemporalDataLoader
    nl_cls = pyg_mspipe.LastNeighborLoader if pipelined else LastNeighborLoader
    neighbor_loader = nl_cls(data.num_nodes, size=10, device=device)
    model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=TGNMemory,
                      message_cls=IdentityMessage, aggregator_cls=LastAggregator,
                      device=device, **({"storage": args.storage} if args.storage else {}))
    extra = {}
    if pipelined:
        extra = dict(memory=model.memory, neighbor_loader=neighbor_loader,
                     staleness_bound=args.staleness_bound, schedule=args.schedule,
                     device=device)
    loaders = [loader_cls(train_data, batch_size=args.batch_size, neg_sampling_ratio=1.0,
                          **extra)]
    loaders += [loader_cls(d, batch_size=args.batch_size, neg_sampling_ratio=1.0)
                for d in (val_data, test_data)]

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, loaders[0], neighbor_loader, data, device=device)
        seconds = time.perf_counter() - start
        val_ap, val_auc = evaluate(model, loaders[1], neighbor_loader, data, device=device)
        test_ap, test_auc = evaluate(model, loaders[2], neighbor_loader, data, device=device)
        print(f"Epoch {epoch:02d}  loss {loss:.4f}  train {seconds:.1f}s  "
              f"val AP {val_ap:.4f} AUC {val_auc:.4f}  test AP {test_ap:.4f} "
              f"AUC {test_auc:.4f}", flush=True)
        if pipelined:
            print(f"         pipeline: {loaders[0].stats}", flush=True)
    if pipelined and args.timeline:
        loaders[0].stats.plot_timeline(args.timeline)
        print(f"timeline saved to {args.timeline}")


if __name__ == "__main__":
    main()
