"""A training run that checkpoints itself; used by test_checkpoint.py.

python tests/resume_worker.py OUT_DIR [--resume] [--prefetch P] [--every K]
                             [--staleness S] [--refresh-lag L]

Prints "batch EPOCH INDEX" after every training step (flushed), checkpoints to
OUT_DIR/ckpt.pt every K steps and at the end of every epoch, and writes the
per-batch losses and the final state to OUT_DIR/result.pt.
"""
import argparse
from pathlib import Path

import torch

from pyg_mspipe import (
    LastNeighborLoader,
    TemporalDataLoader,
    load_checkpoint,
    save_checkpoint,
)
from pyg_mspipe.datasets import load_college_msg
from pyg_mspipe.engine.training import build_tgn
from pyg_mspipe.pipeline import StalenessCorrection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--prefetch", type=int, default=0)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--staleness", type=int, default=None,
                        help="pipeline with this staleness bound, fixed schedule")
    parser.add_argument("--refresh-lag", type=int, default=None,
                        help="StalenessCorrection(lag=L) on the pipeline's reads")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    ckpt = out / "ckpt.pt"

    data = load_college_msg(msg_dim=8)[: args.events]
    torch.manual_seed(0)
    model = build_tgn(data.num_nodes, 8, memory_dim=16, time_dim=16, embedding_dim=16,
                      lr=1e-3)
    memory, gnn, link_pred, optimizer = model.memory, model.gnn, model.link_pred, \
        model.optimizer
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    loader = TemporalDataLoader(data, batch_size=100, neg_sampling_ratio=1.0,
                                prefetch=args.prefetch, neighbor_loader=neighbor_loader,
                                memory=memory, staleness_bound=args.staleness,
                                schedule="fixed",
                                correction=(False if args.refresh_lag is None
                                            else StalenessCorrection(lag=args.refresh_lag)))
    objects = dict(memory=memory, gnn=gnn, link_pred=link_pred, optimizer=optimizer,
                   neighbor_loader=neighbor_loader, loader=loader)
    state = {"epoch": 0, "losses": [], "mid_epoch": False}
    if args.resume and ckpt.exists():
        state = load_checkpoint(ckpt, **objects)
    assoc = torch.empty(data.num_nodes, dtype=torch.long)
    steps = 0
    while state["epoch"] < args.epochs:
        memory.train()
        gnn.train()
        link_pred.train()
        if not state["mid_epoch"]:
            memory.reset_state()
            neighbor_loader.reset_state()
        for batch in loader:
            optimizer.zero_grad()
            n_id, edge_index, e_id = neighbor_loader(batch.n_id)
            assoc[n_id] = torch.arange(n_id.size(0))
            z, last_update = memory(n_id)
            z = gnn(z, last_update, edge_index, data.t[e_id], data.msg[e_id])
            pos = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
            neg = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
            loss = model.criterion(pos, torch.ones_like(pos)) + \
                model.criterion(neg, torch.zeros_like(neg))
            memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
            neighbor_loader.insert(batch.src, batch.dst)
            loss.backward()
            optimizer.step()
            memory.detach()
            state["losses"].append(float(loss.detach()))
            state["mid_epoch"] = True
            steps += 1
            print(f"batch {state['epoch']} {len(state['losses'])}", flush=True)
            if steps % args.every == 0:
                save_checkpoint(ckpt, extra=state, **objects)
        state["epoch"] += 1
        state["mid_epoch"] = False
        save_checkpoint(ckpt, extra=state, **objects)
    torch.save({"losses": state["losses"], "memory": memory.state_dict(),
                "neighbors": neighbor_loader.state_dict(),
                "params": {k: v for k, v in gnn.state_dict().items()}},
               out / "result.pt")


if __name__ == "__main__":
    main()
