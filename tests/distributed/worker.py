"""One rank of a distributed test (run by tests/distributed/common.launch):
python -m tests.distributed.worker SCENARIO RANK WORLD PORT OUT [ARGS]."""
from __future__ import annotations

import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from pyg_mspipe.distributed import (
    DistributedContext,
    DistributedTraining,
    WriteBackExchange,
)
from pyg_mspipe.distributed.training import train_steps
from tests.distributed.common import (
    BATCH,
    CONFIGS,
    LR,
    make_model,
    make_stream,
    named_parameters,
    snapshot,
)


class RecordingExchange(WriteBackExchange):
    """The exchange, keeping a snapshot of the replica after every commit
    (on the pipeline's worker thread where there is one)."""

    def __init__(self, memory, context):
        super().__init__(memory, context)
        self.snaps = []

    def __call__(self, write_back, plan):
        super().__call__(write_back, plan)
        self.snaps.append(snapshot(self.memory))


def setup(context, config: str, lr: float):
    data = make_stream()
    model, nl = make_model(lr)
    dp = DistributedTraining(context, model.memory, [model.gnn, model.link_pred])
    exchange = RecordingExchange(model.memory, context)
    model.memory.set_committer(exchange)
    kwargs = dict(CONFIGS[config])
    if "staleness_bound" in kwargs:
        kwargs.update(memory=model.memory, neighbor_loader=nl)
    loader = dp.loader(data, BATCH, 1.0, seed=0, **kwargs)
    return data, model, nl, dp, exchange, loader


def objects(model, nl, loader) -> dict:
    return dict(memory=model.memory, gnn=model.gnn, link_pred=model.link_pred,
                optimizer=model.optimizer, neighbor_loader=nl, loader=loader)


def train(context, config: str, lr: float, *, on_step=None):
    data, model, nl, dp, exchange, loader = setup(context, config, lr)
    params = {}
    for i, _ in enumerate(train_steps(model, dp, loader, nl, data)):
        if on_step is not None:
            on_step(i)
        if i + 1 == 20:
            params = named_parameters(model)
    dp.barrier()
    dp.check_replicas()
    dp.close()
    return exchange.snaps, params


def main():
    scenario, rank, world, port, out = sys.argv[1:6]
    rank, world, out = int(rank), int(world), Path(out)
    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", int(port), is_master=False,
                          timeout=timedelta(seconds=30))
    context = DistributedContext.init("gloo", rank=rank, world_size=world, store=store,
                                      timeout=20.0, report_timeout=4.0)
    with context.guard():
        if scenario == "equal":  # frozen in each configuration, then a learning rate
            configs = sys.argv[6].split(",")
            results = {config: train(context, config, 0.0)[0] for config in configs}
            results["lr"] = train(context, configs[-1], LR)[1]
            torch.save(results, out / f"w{world}rank{rank}.pt")
            then = sys.argv[7] if len(sys.argv) > 7 else ""
            if then == "save":  # 7 iterations, then a checkpoint by rank 0
                data, model, nl, dp, _, loader = setup(context, "sequential", LR)
                steps = train_steps(model, dp, loader, nl, data)
                for _ in range(7):
                    next(steps)
                dp.save_checkpoint(out / "run.pt", **objects(model, nl, loader))
                steps.close()
                dp.close()
            elif then == "resume":  # the rest of that epoch, on this world size
                data, model, nl, dp, _, loader = setup(context, "sequential", LR)
                dp.load_checkpoint(out / "run.pt", **objects(model, nl, loader))
                for _ in train_steps(model, dp, loader, nl, data, reset=False):
                    pass
                dp.check_replicas()
                torch.save({"params": named_parameters(model),
                            "state": snapshot(model.memory)}, out / f"resumed{rank}.pt")
                dp.close()
        elif scenario in ("raise", "kill"):
            def on_step(i):
                if i == 5 and rank == world - 1:
                    (out / "failed_at").write_text(repr(time.time()))
                    if scenario == "raise":
                        raise RuntimeError(f"test failure injected at iteration {i}")
                    os.kill(os.getpid(), signal.SIGKILL)
            train(context, sys.argv[6], LR, on_step=on_step)
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
    context.close()


if __name__ == "__main__":
    main()
