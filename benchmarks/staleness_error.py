"""How far the memory a pipelined training loop reads is from the fresh one.

A pipelined run (forced bound s, fixed schedule: every read exactly s
iterations stale) trains PyG's example model; beside it a sequential shadow
TGNMemory, given the pipelined memory's parameters before every step, reads
and updates the same batches. Per batch, for the rows the loop reads (the
output of ``memory(n_id)``):

* the relative error ``||m_stale - m_fresh|| / ||m_fresh||`` over all rows;
* the same over the rows changed by the missed write-backs ("W": nodes whose
  state, or the memory of their pending messages' other endpoints, changed in
  the shadow during the last s iterations) and over the other rows;
* rows outside W that differ from the fresh ones (what a correction changed
  that was exact). (The MSPipe-mitigation variant of docs/staleness.md was
  measured before the mitigation was removed.)

With no correction the rows outside W are equal to the fresh rows bit for
bit; a correction should lower the error on W without adding any outside.
Only public APIs: the shadow's state (versions, clock), ``update.message_partners``.

    python benchmarks/staleness_error.py --dataset college --epochs 3
    python benchmarks/staleness_error.py --dataset wikipedia --epochs 1
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections import deque
from pathlib import Path

import torch
from common import load_dataset

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn
from pyg_mspipe.nn import _update as update
from pyg_mspipe.pipeline import StalenessCorrection

VARIANTS = ("none", "refresh-lag0", "refresh-lag1")


def _correction(variant: str) -> dict:
    if variant.startswith("refresh-lag"):
        return {"correction": StalenessCorrection(lag=int(variant[len("refresh-lag"):]))}
    return {}


def _rel(diff: torch.Tensor, ref: torch.Tensor, rows: torch.Tensor) -> float | None:
    if rows.numel() == 0:
        return None
    return float(diff[rows].norm() / ref[rows].norm().clamp_min(1e-12))


def run(dataset: str, bound: int, variant: str, epochs: int, seed: int,
        batch_size: int) -> dict:
    data = load_dataset(dataset)
    train_data, _, _ = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    torch.manual_seed(seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1))
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    shadow = copy.deepcopy(memory)  # (no pipeline attached yet)
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    loader = TemporalDataLoader(train_data, batch_size=batch_size, neg_sampling_ratio=1.0,
                                memory=memory, neighbor_loader=neighbor_loader,
                                staleness_bound=bound, schedule="fixed", prefetch=2,
                                **_correction(variant))
    kept_only = memory.steps.kept_only
    rows = []
    begin = time.perf_counter()
    for epoch in range(epochs):
        for m in (memory, gnn, link_pred, shadow):
            m.train()
        memory.reset_state()
        shadow.reset_state()
        neighbor_loader.reset_state()
        assoc = torch.empty(data.num_nodes, dtype=torch.long)
        clocks = []  # shadow clock before each batch's write
        for i, batch in enumerate(loader):
            model.optimizer.zero_grad()
            n_id, edge_index, e_id = neighbor_loader(batch.n_id)
            assoc[n_id] = torch.arange(n_id.size(0))
            with torch.no_grad():
                for p_s, p in zip(shadow.parameters(), memory.parameters()):
                    p_s.copy_(p)
                fresh, _ = shadow(n_id)
            z, last_update = memory(n_id)
            stale = z.detach()
            # W: rows whose inputs changed during the missed write-backs
            lag = min(i, bound)
            clock = clocks[i - lag] if lag > 0 else shadow.state.clock
            version = shadow.state.version
            changed = version.index_select(0, n_id) > clock
            owner, partner = update.message_partners(shadow.state, n_id, kept_only)
            changed.index_fill_(0, owner[version.index_select(0, partner) > clock], True)
            diff = stale - fresh
            w = changed.nonzero().view(-1)
            other = (~changed).nonzero().view(-1)
            row_diff = diff.abs().amax(-1) > 0
            rows.append({
                "epoch": epoch, "batch": i, "rows": n_id.numel(), "w_rows": w.numel(),
                "err_all": _rel(diff, fresh, torch.arange(n_id.numel())),
                "err_w": _rel(diff, fresh, w), "err_other": _rel(diff, fresh, other),
                "w_rows_differing": int(row_diff[w].sum()),
                "other_rows_differing": int(row_diff[other].sum()),
            })
            t_e, msg_e = data.t[e_id], data.msg[e_id]
            h = gnn(z, last_update, edge_index, t_e, msg_e)
            pos = link_pred(h[assoc[batch.src]], h[assoc[batch.dst]])
            neg = link_pred(h[assoc[batch.src]], h[assoc[batch.neg_dst]])
            loss = model.criterion(pos, torch.ones_like(pos))
            loss = loss + model.criterion(neg, torch.zeros_like(neg))
            clocks.append(shadow.state.clock)
            memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
            with torch.no_grad():
                shadow.update_state(batch.src, batch.dst, batch.t, batch.msg)
            neighbor_loader.insert(batch.src, batch.dst)
            loss.backward()
            model.optimizer.step()
            memory.detach()
            shadow.detach()
    summary = loader.stats.summary()
    return {"dataset": dataset, "bound": bound, "variant": variant, "epochs": epochs,
            "seed": seed, "batch_size": batch_size, "rows": rows,
            "mean_staleness": summary["mean_staleness"],
            "refreshed_staleness": summary.get("mean_refreshed_staleness"),
            "seconds": time.perf_counter() - begin}


def selection(dataset: str, bound: int, batch_size: int, quantile: float = 0.99) -> dict:
    r"""Which rows MSPipe's rule picks, against the rows staleness changed.

    Replays the training events through a memory (the last update of a node
    does not depend on the parameters) and, per batch, applies the rule to
    the read the pipeline makes (the state s batches back): ours (dt at or
    above the quantile, dt > 0) and the research code's (strictly above).
    Counts the rows picked, those never updated, and those among the rows
    whose own state changed in the last s batches (W without partners)."""
    data = load_dataset(dataset)
    train_data, _, _ = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)
    torch.manual_seed(0)
    memory = build_tgn(data.num_nodes, data.msg.size(-1)).memory
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10)
    loader = TemporalDataLoader(train_data, batch_size=batch_size, neg_sampling_ratio=1.0)
    history = deque(maxlen=bound + 1)  # last_update before each of the last batches
    rows = []
    memory.train()
    for i, batch in enumerate(loader):
        n_id, _, _ = neighbor_loader(batch.n_id)
        history.append(memory.last_update.clone())
        if i >= bound:
            lu = history[0][n_id]  # the read: the state before batch i - s
            dt = (batch.t.max() - lu).double()
            threshold = torch.quantile(dt, quantile)
            ours = (dt >= threshold) & (dt > 0)
            strict = dt > threshold
            w = memory.last_update[n_id] != lu  # own state changed since the read
            rows.append({"rows": n_id.numel(), "w": int(w.sum()),
                         "ours": int(ours.sum()), "ours_in_w": int((ours & w).sum()),
                         "ours_never_updated": int((ours & (lu == 0)).sum()),
                         "strict": int(strict.sum()), "strict_in_w": int((strict & w).sum()),
                         "w_dt_quantile": float((dt[w].unsqueeze(-1) >= dt).double()
                                                .mean()) if bool(w.any()) else None})
        with torch.no_grad():
            memory(n_id)
            memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        neighbor_loader.insert(batch.src, batch.dst)
    keys = rows[0].keys()
    return {"dataset": dataset, "bound": bound, "batch_size": batch_size, "variant": "selection",
            "per_batch_mean": {k: _mean(r[k] for r in rows) for k in keys}}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def describe(result: dict) -> dict:
    r"""Per-epoch means of the per-batch figures of :func:`run`."""
    out = {k: result[k] for k in ("dataset", "bound", "variant", "seed", "batch_size",
                                  "mean_staleness", "refreshed_staleness")}
    epochs = []
    for e in range(result["epochs"]):
        sel = [r for r in result["rows"] if r["epoch"] == e and r["batch"] >= result["bound"]]
        epochs.append({
            "epoch": e,
            "err_all": _mean(r["err_all"] for r in sel),
            "err_w": _mean(r["err_w"] for r in sel),
            "err_other": _mean(r["err_other"] for r in sel),
            "rows_per_batch": _mean(r["rows"] for r in sel),
            "w_share": _mean(r["w_rows"] / r["rows"] for r in sel),
            "other_rows_differing_per_batch": _mean(r["other_rows_differing"] for r in sel),
            "w_rows_differing_share": _mean(r["w_rows_differing"] / max(r["w_rows"], 1)
                                            for r in sel),
        })
    out["per_epoch"] = epochs
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--bound", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--selection", action="store_true",
                        help="only the rows MSPipe's rule picks (see selection())")
    parser.add_argument("--out", default="benchmarks/results/staleness_error.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.selection:
        result = selection(args.dataset, args.bound, args.batch_size)
        print(json.dumps(result), flush=True)
        with out.open("a") as f:
            f.write(json.dumps(result) + "\n")
        return
    for variant in args.variants:
        result = describe(run(args.dataset, args.bound, variant, args.epochs, args.seed,
                              args.batch_size))
        print(json.dumps(result), flush=True)
        with out.open("a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
