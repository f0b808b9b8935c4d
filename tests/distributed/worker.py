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
from tests.distributed.common import (
    BATCH,
    CONFIGS,
    make_model,
    make_stream,
    named_parameters,
    run_epoch,
    snapshot,
)


class RecordingExchange(WriteBackExchange):
    """The exchange, keeping a snapshot of the replica after every commit."""

    def __init__(self, memory, context):
        super().__init__(memory, context)
        self.snaps = []

    def __call__(self, write_back, plan):
        super().__call__(write_back, plan)
        self.snaps.append(snapshot(self.memory))


def train(context, config: str, *, step: bool, out: Path | None = None,
          fail_at: int | None = None,
          fail: str = "", fail_rank: int = -1):
    data = make_stream()
    model, nl = make_model()
    dp = DistributedTraining(context, model.memory, [model.gnn, model.link_pred])
    exchange = RecordingExchange(model.memory, context)
    model.memory.set_committer(exchange)
    kwargs = dict(CONFIGS[config])
    if "staleness_bound" in kwargs:
        kwargs.update(memory=model.memory, neighbor_loader=nl)
    loader = dp.loader(data, BATCH, 1.0, seed=0, **kwargs)
    params = {}

    def on_step(i):
        if i == fail_at and context.rank == fail_rank:
            (out / "failed_at").write_text(repr(time.time()))
            if fail == "raise":
                raise RuntimeError(f"test failure injected at iteration {i}")
            os.kill(os.getpid(), signal.SIGKILL)
        if i + 1 == 20:
            params.update(named_parameters(model))

    run_epoch(model, loader, nl, data, dp=dp, step=step, on_step=on_step)
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
        if scenario == "equal":
            results = {}
            for config in CONFIGS:
                results[config] = train(context, config, step=False)[0]
            results["lr"] = train(context, "bound2", step=True)[1]
            torch.save(results, out / f"rank{rank}.pt")
        elif scenario == "one":
            torch.save({sys.argv[6]: train(context, sys.argv[6], step=False)[0]},
                       out / f"rank{rank}.pt")
        elif scenario in ("raise", "kill"):
            config = sys.argv[6]
            train(context, config, step=True, out=out, fail_at=5, fail=scenario, fail_rank=world - 1)
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
    context.close()


if __name__ == "__main__":
    main()
