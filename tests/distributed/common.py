"""Shared pieces of the distributed tests: a small stream, the model, the
single-process reference, and the launcher of rank processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.training import build_tgn, train_steps

ROOT = Path(__file__).resolve().parents[2]
NUM_NODES, MSG_DIM, BATCH = 30, 4, 10
#: Configurations of the memory side: loader keywords.
CONFIGS = {
    "sequential": {"prefetch": 0},
    "bound0": {"staleness_bound": 0, "prefetch": 2},
    "bound2": {"staleness_bound": 2, "schedule": "fixed", "prefetch": 2},
}
LR = 0.05


def make_stream(num_events: int = 201, seed: int = 7) -> TemporalData:
    r"""Events with many equal timestamps (ties decide LastAggregator), and a
    last global batch of one event (empty shares)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, NUM_NODES, (num_events,), generator=g)
    dst = torch.randint(0, NUM_NODES, (num_events,), generator=g)
    t = torch.randint(0, num_events // 3, (num_events,), generator=g).sort().values
    msg = torch.randn(num_events, MSG_DIM, generator=g)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


def make_model(lr: float):
    r"""The model of PyG's example, small, without dropout, trained with SGD
    (lr 0: frozen). Not Adam: it turns the float noise of a gradient that is
    zero in exact arithmetic (the attention's key bias, which the softmax
    ignores) into steps of +-lr, so two runs whose gradients differ by
    round-off drift apart by lr per step in that parameter."""
    torch.manual_seed(0)
    model = build_tgn(NUM_NODES, MSG_DIM, memory_dim=8, time_dim=8, embedding_dim=8,
                      lr=lr, dropout=0.0)
    params = [p for group in model.optimizer.param_groups for p in group["params"]]
    model.optimizer = torch.optim.SGD(params, lr=lr)
    return model, LastNeighborLoader(NUM_NODES, size=5)


def snapshot(memory) -> dict:
    r"""Memory, last updates and pending messages of a replica."""
    state = memory.state
    store = state.store.get_extra_state()
    return {"memory": state.memory.detach().clone(), "last_update": state.last_update.clone(),
            **{f"store.{k}": v.clone() for k, v in store.items() if torch.is_tensor(v)}}


def named_parameters(model) -> dict:
    out = {}
    for name, module in (("memory", model.memory), ("gnn", model.gnn),
                         ("link_pred", model.link_pred)):
        for k, v in module.named_parameters():
            out[f"{name}.{k}"] = v.detach().clone()
    return out


def reference(lr: float, config: str = "sequential", *, steps: int = 20):
    r"""One process on the same global batches: a snapshot after every
    iteration, the parameters after :obj:`steps` steps, and the final
    parameters."""
    data = make_stream()
    model, nl = make_model(lr)
    kwargs = dict(CONFIGS[config])
    if "staleness_bound" in kwargs:
        kwargs.update(memory=model.memory, neighbor_loader=nl)
    loader = TemporalDataLoader(data, BATCH, 1.0, generator=torch.Generator().manual_seed(0),
                                **kwargs)
    snaps, params = [], {}
    for i, _ in enumerate(train_steps(model, loader, nl, data)):
        snaps.append(snapshot(model.memory))
        if i + 1 == steps:
            params = named_parameters(model)
    return snaps, params, named_parameters(model)


def launch(world_size: int, scenario: str, out: Path, *, timeout: float = 60.0,
           extra: tuple = ()) -> list[tuple[int | None, str, float]]:
    r"""Runs :obj:`world_size` rank processes of ``tests/distributed/worker.py``
    against a store hosted here; returns (exit code, stderr, time.time()
    when it was seen ended) per rank. Every wait is bounded; processes still
    running at the deadline are killed (exit code None)."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=timeout))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
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


def check_exits(results):
    for rank, (code, err, _) in enumerate(results):
        assert code == 0, f"rank {rank} exited with {code}:\n{err[-3000:]}"
