"""A training run of one of the engine's models that checkpoints itself;
used by test_checkpoint.py, pipeline/test_models_resume.py and
pipeline/test_correction.py.

python tests/resume_worker.py OUT_DIR [--model NAME] [--resume] [--prefetch P]
                             [--every K] [--staleness S] [--refresh-lag L]
                             [--epochs E] [--events N]

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
from pyg_mspipe.engine.models import build_model
from pyg_mspipe.pipeline import StalenessCorrection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", default="tgn", help="a name build_model knows")
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
    model = build_model(args.model, data.num_nodes, 8, memory_dim=16, time_dim=16,
                        embedding_dim=16, lr=1e-3, mailbox_size=4, num_neighbors=4)
    nl = LastNeighborLoader(data.num_nodes, size=10) if model.needs_neighbors else None
    loader = TemporalDataLoader(data, batch_size=100, neg_sampling_ratio=1.0,
                                prefetch=args.prefetch, neighbor_loader=nl,
                                memory=model.memory, staleness_bound=args.staleness,
                                schedule="fixed",
                                correction=(False if args.refresh_lag is None
                                            else StalenessCorrection(lag=args.refresh_lag)))
    objects = dict(memory=model.memory, gnn=model.gnn, link_pred=model.link_pred,
                   optimizer=model.optimizer, loader=loader)
    if nl is not None:
        objects["neighbor_loader"] = nl
    state = {"epoch": 0, "losses": [], "mid_epoch": False}
    if args.resume and ckpt.exists():
        state = load_checkpoint(ckpt, **objects)
    assoc = torch.empty(data.num_nodes, dtype=torch.long)
    steps = 0
    while state["epoch"] < args.epochs:
        for module in model.modules():
            module.train()
        if not state["mid_epoch"]:
            model.memory.reset_state()
            if nl is not None:
                nl.reset_state()
        for batch in loader:
            model.optimizer.zero_grad()
            edge_index = t_e = msg_e = None
            n_id = batch.n_id
            if nl is not None:
                n_id, edge_index, e_id = nl(batch.n_id)
                t_e, msg_e = data.t[e_id], data.msg[e_id]
            assoc[n_id] = torch.arange(n_id.size(0))
            z, last_update = model.memory(n_id)
            h = model.embed(z, last_update, edge_index, t_e, msg_e)
            pos = model.score(h, last_update, assoc, batch.src, batch.dst, batch.t)
            neg = model.score(h, last_update, assoc, batch.src, batch.neg_dst, batch.t)
            loss = model.criterion(pos, torch.ones_like(pos)) + \
                model.criterion(neg, torch.zeros_like(neg))
            model.update_memory(h, assoc, batch.src, batch.dst, batch.t, batch.msg)
            if nl is not None:
                nl.insert(batch.src, batch.dst)
            loss.backward()
            model.optimizer.step()
            model.memory.detach()
            state["losses"].append(float(loss.detach()))
            state["mid_epoch"] = True
            steps += 1
            print(f"batch {state['epoch']} {len(state['losses'])}", flush=True)
            if steps % args.every == 0:
                save_checkpoint(ckpt, extra=state, **objects)
        state["epoch"] += 1
        state["mid_epoch"] = False
        save_checkpoint(ckpt, extra=state, **objects)
    torch.save({"losses": state["losses"], "memory": model.memory.state_dict(),
                "neighbors": {} if nl is None else nl.state_dict(),
                "params": {f"{i}.{k}": v for i, m in enumerate(model.modules())
                           for k, v in m.state_dict().items() if torch.is_tensor(v)}},
               out / "result.pt")


if __name__ == "__main__":
    main()
