"""Data-parallel training with replicated memory (pyg_mspipe.distributed):
events/s of PyG's example loop at 1, 2 and 3 processes (gloo, CPU), and the
bytes every rank all-gathers per iteration in the write-back exchange and
all-reduces for the gradients.

Each world size runs as its own set of processes (spawned here, one store
hosted here), the same global batches, one timed epoch after one warm-up
epoch; 1 process runs the same distributed code path (world of one). Every
process uses --threads intra-op threads.

    python benchmarks/bench_distributed.py --dataset college --worlds 1,2,3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def rank_main(args):
    from common import load_dataset

    from pyg_mspipe import LastNeighborLoader
    from pyg_mspipe.distributed import DistributedContext, DistributedTraining
    from pyg_mspipe.distributed.training import train_steps
    from pyg_mspipe.engine.training import build_tgn

    torch.set_num_threads(args.threads)
    store = dist.TCPStore("127.0.0.1", args.port, is_master=False,
                          timeout=timedelta(seconds=120))
    context = DistributedContext.init("gloo", rank=args.rank, world_size=args.world,
                                      store=store, timeout=300.0)
    data = load_dataset(args.dataset)
    train_data = data.train_val_test_split(val_ratio=0.15, test_ratio=0.15)[0]
    if args.max_events:
        train_data = train_data[:args.max_events]
    torch.manual_seed(args.seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1))
    nl = LastNeighborLoader(data.num_nodes, size=10)
    dp = DistributedTraining(context, model.memory, [model.gnn, model.link_pred])
    kwargs = {"prefetch": 0}
    if args.staleness_bound is not None:
        kwargs = {"staleness_bound": args.staleness_bound, "schedule": "fixed",
                  "prefetch": 2, "memory": model.memory, "neighbor_loader": nl}
    loader = dp.loader(train_data, args.batch_size, 1.0, seed=args.seed, **kwargs)
    grad_bytes = sum(p.numel() * p.element_size() + p.element_size() for p in dp.parameters)
    out = {}
    for epoch in ("warmup", "timed"):
        dp.barrier()
        lo_begin = _loopback_bytes()
        begin = time.perf_counter()
        start_bytes, start_iters = dp.exchange.bytes_gathered, dp.exchange.iterations
        for _ in train_steps(model, dp, loader, nl, data):
            pass
        dp.barrier()
        seconds = time.perf_counter() - begin
        iters = dp.exchange.iterations - start_iters
        out[epoch] = {"seconds": seconds, "events_per_s": train_data.num_events / seconds,
                      "iterations": iters,
                      "gathered_bytes_per_iter": (dp.exchange.bytes_gathered - start_bytes)
                      / max(iters, 1),
                      "allreduce_bytes_per_iter": grad_bytes,
                      "loopback_bytes_per_iter": (_loopback_bytes() - lo_begin) / max(iters, 1)}
    if args.rank == 0:
        print("RESULT " + json.dumps(out["timed"]), flush=True)
    dp.close()
    context.close()


def _loopback_bytes() -> int:
    # Bytes sent over the loopback interface so far (all processes of the
    # machine: an independent count of what the ranks' gloo pairs moved).
    try:
        for line in Path("/proc/net/dev").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[8])
    except OSError:
        pass
    return 0


def launch(args, world: int) -> dict:
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=600))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--rank-of", str(world), "--port", str(store.port),
           "--dataset", args.dataset, "--batch-size", str(args.batch_size),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.max_events:
        cmd += ["--max-events", str(args.max_events)]
    if args.staleness_bound is not None:
        cmd += ["--staleness-bound", str(args.staleness_bound)]
    procs = [subprocess.Popen(cmd + ["--rank", str(r)], env=env, stdout=subprocess.PIPE,
                              text=True) for r in range(world)]
    try:
        outs = [p.communicate(timeout=args.timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"world {world}: exit codes {[p.returncode for p in procs]}")
    line = next(x for x in outs[0].splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="college", choices=["college", "wikipedia"])
    parser.add_argument("--worlds", default="1,2,3")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--max-events", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--staleness-bound", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3000.0)
    parser.add_argument("--rank-of", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_of is not None:
        args.world = args.rank_of
        return rank_main(args)
    print(f"# bench_distributed: {args.dataset}, global batch {args.batch_size}, "
          f"{args.threads} thread(s) per process, os.cpu_count()={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
          f"staleness_bound {args.staleness_bound}")
    print("| processes | events/s | epoch s | iterations | all-gathered B/iter (per rank) "
          "| all-reduced B/iter | model: wire B/iter | loopback B/iter (measured) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for world in (int(w) for w in args.worlds.split(",")):
        r = launch(args, world)
        # What the wire carries: every rank's all-gather contribution reaches
        # the W - 1 others (W (W - 1) chunks); a ring all-reduce sends
        # 2 (W - 1) / W of the buffer per rank.
        chunk = r["gathered_bytes_per_iter"] / world
        wire = world * (world - 1) * chunk + 2 * (world - 1) * r["allreduce_bytes_per_iter"]
        print(f"| {world} | {r['events_per_s']:,.0f} | {r['seconds']:.1f} | {r['iterations']} "
              f"| {r['gathered_bytes_per_iter']:,.0f} | {r['allreduce_bytes_per_iter']:,} "
              f"| {wire:,.0f} | {r['loopback_bytes_per_iter']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
