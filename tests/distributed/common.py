"""Shared pieces of the distributed tests: a small stream, the model, the
loop (one function for the single-process reference and the ranks), and the
launcher of rank processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn

ROOT = Path(__file__).resolve().parents[2]
NUM_NODES, MSG_DIM, BATCH = 30, 4, 10
#: Configurations of the memory side: (name, loader keywords).
CONFIGS = {
    "sequential": {"prefetch": 0},
    "bound0": {"staleness_bound": 0, "prefetch": 2},
    "bound2": {"staleness_bound": 2, "schedule": "fixed", "prefetch": 2},
}


def make_stream(num_events: int = 201, seed: int = 7) -> TemporalData:
    r"""Events with many equal timestamps (ties decide LastAggregator), and a
    last global batch of one event (empty shares)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, NUM_NODES, (num_events,), generator=g)
    dst = torch.randint(0, NUM_NODES, (num_events,), generator=g)
    t = torch.randint(0, num_events // 3, (num_events,), generator=g).sort().values
    msg = torch.randn(num_events, MSG_DIM, generator=g)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


def make_model(lr: float = 1e-3):
    torch.manual_seed(0)
    model = build_tgn(NUM_NODES, MSG_DIM, memory_dim=8, time_dim=8, embedding_dim=8,
                      lr=lr, dropout=0.0)
    return model, LastNeighborLoader(NUM_NODES, size=5)


def snapshot(memory) -> dict:
    state = memory.state
    store = state.store.get_extra_state()
    return {"memory": state.memory.detach().clone(), "last_update": state.last_update.clone(),
            **{f"store.{k}": v.clone() for k, v in store.items() if torch.is_tensor(v)}}


def run_epoch(model, loader, neighbor_loader, data, *, dp=None, step=False, on_step=None):
    r"""PyG's training loop, with the three changes of the distributed one
    (empty shares, the global batch's insert, the gradient reduction)."""
    memory, gnn, link_pred = model.memory, model.gnn, model.link_pred
    for m in (memory, gnn, link_pred):
        m.train()
    memory.reset_state()
    neighbor_loader.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long)
    for i, batch in enumerate(loader):
        model.optimizer.zero_grad()
        n_id, edge_index, e_id = neighbor_loader(batch.n_id)
        assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = memory(n_id)
        loss = None
        if batch.num_events:
            z = gnn(z, last_update, edge_index, data.t[e_id], data.msg[e_id])
            pos = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
            neg = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
            loss = model.criterion(pos, torch.ones_like(pos))
            loss = loss + model.criterion(neg, torch.zeros_like(neg))
        memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
        if dp is None:
            neighbor_loader.insert(batch.src, batch.dst)
        else:
            neighbor_loader.insert(batch.global_src, batch.global_dst)
        if loss is not None:
            loss.backward()
        if dp is not None:
            dp.reduce_gradients(batch)
        if step:
            model.optimizer.step()
        memory.detach()
        if on_step is not None:
            on_step(i)


def reference(config: str, *, step: bool = False, steps: int | None = None):
    r"""The single process with the same global batches: per-iteration
    snapshots (frozen) or the parameters after :obj:`steps` steps."""
    data = make_stream()
    model, nl = make_model()
    loader = TemporalDataLoader(data, BATCH, 1.0, generator=torch.Generator().manual_seed(0),
                                prefetch=0)
    snaps, params = [], {}

    def on_step(i):
        snaps.append(snapshot(model.memory))
        if steps is not None and i + 1 == steps:
            params.update(named_parameters(model))

    run_epoch(model, loader, nl, data, step=step, on_step=on_step)
    return snaps, params


def named_parameters(model) -> dict:
    out = {}
    for name, module in (("memory", model.memory), ("gnn", model.gnn),
                         ("link_pred", model.link_pred)):
        for k, v in module.named_parameters():
            out[f"{name}.{k}"] = v.detach().clone()
    return out


def launch(world_size: int, scenario: str, out: Path, *, timeout: float = 60.0,
           extra: tuple = ()) -> list[tuple[int, str, float]]:
    r"""Runs :obj:`world_size` rank processes of ``tests/distributed/worker.py``
    against a store hosted here; returns (exit code, stderr, seconds) per
    rank. Every wait is bounded; processes still running at the deadline are
    killed (and reported with exit code None)."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=__import__("datetime").timedelta(seconds=timeout))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    procs = []
    begin = time.monotonic()
    for rank in range(world_size):
        cmd = [sys.executable, "-m", "tests.distributed.worker", scenario, str(rank),
               str(world_size), str(store.port), str(out), *extra]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            left = max(timeout - (time.monotonic() - begin), 0.1)
            try:
                _, err = p.communicate(timeout=left)
                results.append((p.returncode, err, time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate(timeout=10)
                results.append((None, err, time.time()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        del store
    return results
