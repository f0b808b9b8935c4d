"""How the memory module's cost grows with the number of nodes.

PyG's ``torch_geometric.nn.TGNMemory`` versus ``pyg_mspipe.TGNMemory``
(IdentityMessage + LastAggregator, training mode) on a random event stream, at
several graph sizes. Per batch: ``forward(n_id)``, ``update_state(src, dst, t,
msg)`` and ``detach()``, as in PyG's ``examples/tgn.py``; :obj:`n_id` is the
batch's nodes (sources, destinations, one random negative per event) plus
random extra nodes, about as many as the example's neighbour sampling adds
(``--n-id``, 2,400 by default). The batch work is the same at every size, so
a well-behaved memory costs the same per batch at 10k and at 10M nodes.

Timing runs in one process, pairs of models alternating batch by batch (the
order flips every batch): ours at each size against ours at the smallest size
(the scaling ratio, robust to the machine's load drifting between sizes), then
PyG against ours on the same batches. Per-batch figures are medians over the
timed batches, ratios medians of per-batch ratios. ``reset_state()`` and the train-to-eval flush
(``memory.eval()`` after a few training batches) are timed the same way,
``--reps`` times. Peak RSS (``ru_maxrss``) is per process, so it is measured
for each contender and size in a fresh subprocess (this script with
``--worker``) that builds the memory and runs the same batches, then the
flush.

    python benchmarks/bench_scale.py --sizes 10000,100000,1000000,10000000

Gathering random rows of a large table costs more than of a small one (cache
and TLB misses) even where the work is the same: with 4 KiB pages a 4 GiB
memory table (10M nodes, memory_dim=100) misses the TLB on nearly every row.
``THP_MEM_ALLOC_ENABLE=1`` makes PyTorch back large allocations with huge
pages (where the system's transparent huge pages are ``madvise`` or
``always``), which removes most of that.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.nn import TGNMemory as PyGTGNMemory
from torch_geometric.nn.models.tgn import IdentityMessage as PyGIdentityMessage
from torch_geometric.nn.models.tgn import LastAggregator as PyGLastAggregator

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory

CONTENDERS = {
    "pyg": (PyGTGNMemory, PyGIdentityMessage, PyGLastAggregator),
    "ours": (TGNMemory, IdentityMessage, LastAggregator),
}


@dataclass
class Batch:
    src: Tensor
    dst: Tensor
    t: Tensor
    msg: Tensor
    n_id: Tensor


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000",
                        help="comma-separated numbers of nodes")
    parser.add_argument("--batches", type=int, default=100, help="timed batches per size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches first")
    parser.add_argument("--batch-size", type=int, default=200, help="events per batch")
    parser.add_argument("--n-id", type=int, default=2400, help="nodes per forward")
    parser.add_argument("--memory-dim", type=int, default=100)
    parser.add_argument("--time-dim", type=int, default=100)
    parser.add_argument("--raw-msg-dim", type=int, default=172)
    parser.add_argument("--reps", type=int, default=3,
                        help="timed reset_state() and flush calls per size")
    parser.add_argument("--refill", type=int, default=5,
                        help="training batches before each timed flush")
    parser.add_argument("--rss-batches", type=int, default=30,
                        help="training batches of each RSS subprocess")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS subprocesses")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice); one thread "
                             "is far less disturbed by other processes on a busy machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


# ------------------------------------------------------------------- data
def pad_unique(base: Tensor, target: int, num_nodes: int, g: torch.Generator) -> Tensor:
    r"""The sorted unique nodes of :obj:`base` plus random other nodes, about
    :obj:`target` in all (like the loader's ``n_id``: batch nodes, then
    sampled neighbours)."""
    target = min(target, num_nodes)
    x = torch.cat([base, torch.randint(0, num_nodes, (2 * target,), generator=g)])
    uniq, inv = torch.unique(x, return_inverse=True)
    # First occurrence of every value: batch nodes come first, so all are kept.
    pos = torch.arange(x.numel())
    first = torch.full((uniq.numel(),), x.numel()).scatter_reduce_(0, inv, pos, "amin")
    return x[first.sort().values[:target]].sort().values


def make_stream(num_nodes: int, num_batches: int, args) -> list[Batch]:
    r"""Random events, uniform over all nodes, with increasing timestamps."""
    g = torch.Generator().manual_seed(args.seed)
    out, t0 = [], 0
    for _ in range(num_batches):
        size = args.batch_size
        src = torch.randint(0, num_nodes, (size,), generator=g)
        dst = torch.randint(0, num_nodes, (size,), generator=g)
        neg = torch.randint(0, num_nodes, (size,), generator=g)
        t = t0 + torch.randint(0, 3, (size,), generator=g).cumsum(0)
        t0 = int(t[-1]) + 1
        msg = torch.randn(size, args.raw_msg_dim, generator=g)
        n_id = pad_unique(torch.cat([src, dst, neg]), args.n_id, num_nodes, g)
        out.append(Batch(src, dst, t, msg, n_id))
    return out


# ----------------------------------------------------------------- models
def build(name: str, num_nodes: int, args) -> torch.nn.Module:
    memory_cls, message_cls, aggr_cls = CONTENDERS[name]
    torch.manual_seed(args.seed)
    return memory_cls(num_nodes, args.raw_msg_dim, args.memory_dim, args.time_dim,
                      message_cls(args.raw_msg_dim, args.memory_dim, args.time_dim),
                      aggr_cls())


def step(memory: torch.nn.Module, batch: Batch):
    r"""The memory module's part of one training batch of PyG's example."""
    memory(batch.n_id)
    memory.update_state(batch.src, batch.dst, batch.t, batch.msg)
    memory.detach()


def timed(fn, *args) -> float:
    r"""Seconds :obj:`fn(*args)` takes."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def mem_available() -> int:
    r"""Bytes the kernel reports as available (0 if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


#: A flush is timed again only while one takes less than this (seconds).
FLUSH_REPEAT_S = 10.0


def flush_skip_reason(name: str, num_nodes: int, args) -> str | None:
    r"""Both flushes run every node through the GRU (PyG's semantics). PyG's
    does it in one call: a GRU input per node (:obj:`[num_nodes, 2 *
    memory_dim + raw_msg_dim + time_dim]`, in about two copies) and the GRU's
    gates. Ours goes 65,536 nodes at a time into a new memory table
    (:obj:`[num_nodes, memory_dim]`). Skips a flush where that cannot fit in
    the available memory (an out-of-memory kill would hit other processes of
    this machine too)."""
    width = 2 * args.memory_dim + args.raw_msg_dim + args.time_dim
    if name == "pyg":
        need = num_nodes * 4 * (2 * width + 9 * args.memory_dim)
        what = f"a [N, {width}] GRU input for all N nodes at once, and the GRU's gates"
    else:
        need = num_nodes * (4 * args.memory_dim + 8) + 65536 * 4 * (2 * width + 9 * args.memory_dim)
        what = f"a new [N, {args.memory_dim}] memory table"
    avail = mem_available()
    if avail and need > 0.7 * avail:
        return (f"flush needs ~{need / 2**30:.0f} GiB ({what}), "
                f"{avail / 2**30:.0f} GiB available")
    return None


def time_reset_and_flush(memory, batches: list, skip_flush: bool, args):
    r"""Seconds of :obj:`args.reps` calls of ``reset_state()``, each after
    :obj:`args.refill` training batches and (unless :obj:`skip_flush`) the
    flush, ``memory.eval()``, timed again only while it takes less than
    :obj:`FLUSH_REPEAT_S`."""
    flush_s, reset_s = [], []
    for rep in range(args.reps):
        for batch in batches[rep * args.refill:(rep + 1) * args.refill]:
            step(memory, batch)
        if not skip_flush and (not flush_s or flush_s[-1] < FLUSH_REPEAT_S):
            flush_s.append(timed(memory.eval))
            memory.train()
        reset_s.append(timed(memory.reset_state))
    return flush_s, reset_s


# ---------------------------------------------------------------- timing
def time_batches(models: dict, streams: dict, args) -> dict:
    r"""Per-batch seconds of every model on its stream, the models taking
    turns batch by batch (the order rotates every batch)."""
    names = list(models)
    per_batch = {name: [] for name in names}
    for i in range(args.warmup + args.batches):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            dt = timed(step, models[name], streams[name][i])
            if i >= args.warmup:
                per_batch[name].append(dt)
    return per_batch


def median_ratio(num: list[float], den: list[float]) -> float:
    r"""Median of the per-batch ratios (batches timed next to each other)."""
    return statistics.median(a / b for a, b in zip(num, den))


def build_all(specs: dict) -> tuple[dict, dict]:
    r"""Models from :obj:`{name: (contender, num_nodes, args)}`, and the
    seconds each took to build."""
    models, build_s = {}, {}
    for name, spec in specs.items():
        start = time.perf_counter()
        models[name] = build(*spec)
        build_s[name] = time.perf_counter() - start
    return models, build_s


def time_size(num_nodes: int, base: int, args) -> dict:
    r"""Per-batch, reset_state() and flush times of both contenders at
    :obj:`num_nodes` nodes.

    Two phases, pairs of models alternating batch by batch: first ours
    against ours at :obj:`base` nodes (``"ref"``), so that the ratio between
    sizes does not depend on the load of the machine changing from one size to
    the next; then, on the same batches, PyG against a fresh copy of ours.
    (PyG runs apart from the first phase: its per-batch passes over all nodes
    evict the caches of whatever runs next.)"""
    batches = args.warmup + args.batches + args.reps * args.refill
    stream = make_stream(num_nodes, batches, args)
    models, _ = build_all({"ours": ("ours", num_nodes, args), "ref": ("ours", base, args)})
    scaling = time_batches(models, {"ours": stream, "ref": make_stream(base, batches, args)},
                           args)
    models.clear()
    models, build_s = build_all({"pyg": ("pyg", num_nodes, args),
                                 "ours": ("ours", num_nodes, args)})
    per_batch = time_batches(models, {"pyg": stream, "ours": stream}, args)
    # One contender at a time, the other one freed: a flush needs memory.
    skip_flush, flush_s, reset_s = {}, {}, {}
    for name in list(models):
        memory = models.pop(name)
        skip_flush[name] = flush_skip_reason(name, num_nodes, args)
        flush_s[name], reset_s[name] = time_reset_and_flush(
            memory, stream[args.warmup + args.batches:], skip_flush[name] is not None, args)
        del memory
    return {
        "nodes": num_nodes,
        "n_id": statistics.mean(b.n_id.numel() for b in stream),
        "build_s": build_s,
        "batch_ms": {k: 1e3 * statistics.median(v) for k, v in per_batch.items()},
        "pyg_vs_ours": median_ratio(per_batch["pyg"], per_batch["ours"]),
        "ours_vs_ref": median_ratio(scaling["ours"], scaling["ref"]),
        "reset_ms": {k: 1e3 * statistics.median(v) for k, v in reset_s.items()},
        "flush_ms": {k: 1e3 * statistics.median(v) if v else None
                     for k, v in flush_s.items()},
        "skip_flush": skip_flush,
    }


# ------------------------------------------------------------------- RSS
def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(args):
    r"""One contender at one size, in its own process: prints its peak RSS
    after the imports, after the training batches, and after the flush."""
    out = {"start": max_rss_mib()}
    stream = make_stream(args.size, args.rss_batches, args)
    memory = build(args.worker, args.size, args)
    for batch in stream:
        step(memory, batch)
    out["train"] = max_rss_mib()
    if flush_skip_reason(args.worker, args.size, args) is None:
        memory.eval()
        out["flush"] = max_rss_mib()
    print(json.dumps(out), flush=True)


def measure_rss(name: str, num_nodes: int, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--size", str(num_nodes),
           "--rss-batches", str(args.rss_batches),
           "--batch-size", str(args.batch_size), "--n-id", str(args.n_id),
           "--memory-dim", str(args.memory_dim), "--time-dim", str(args.time_dim),
           "--raw-msg-dim", str(args.raw_msg_dim), "--seed", str(args.seed)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": f"worker exited with {proc.returncode}: "
                         f"{proc.stderr.strip().splitlines()[-1:] }"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report
def fmt(x, spec=".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def rss_cell(rss: dict | None, key: str) -> str:
    if rss is None:
        return "-"
    if "error" in rss:
        return "failed"
    return fmt(rss.get(key), ".0f")


def report(rows: list[dict], args):
    base = f"{rows[0]['nodes']:,}"
    print()
    print(f"memory module per batch ({args.batch_size} events: forward(n_id) + update_state + "
          f"detach), median of {args.batches} batches; ratios: medians of per-batch ratios; "
          f"ours/ours@{base}: against ours at {base} nodes, alternating (without PyG); "
          f"reset_state / flush: median of {args.reps} (a flush of over "
          f"{FLUSH_REPEAT_S:.0f} s: once)")
    print(f"{'nodes':>10} {'n_id':>5} {'PyG ms':>8} {'ours ms':>8} {'PyG/ours':>8} "
          f"{'ours/ours@' + base:>16} {'reset PyG ms':>12} {'reset ours ms':>13} "
          f"{'flush PyG ms':>12} {'flush ours ms':>13}")
    for r in rows:
        b, rs, fl = r["batch_ms"], r["reset_ms"], r["flush_ms"]
        print(f"{r['nodes']:>10,} {r['n_id']:>5.0f} {b['pyg']:>8.2f} {b['ours']:>8.2f} "
              f"{r['pyg_vs_ours']:>7.2f}x {r['ours_vs_ref']:>15.2f}x "
              f"{rs['pyg']:>12.1f} {rs['ours']:>13.1f} "
              f"{fmt(fl['pyg']):>12} {fmt(fl['ours']):>13}")
    if not args.no_rss:
        print()
        print("peak RSS (MiB; ru_maxrss of a fresh process per contender and size, "
              f"{args.rss_batches} training batches): after the imports / after the "
              "training batches / after the flush")
        print(f"{'nodes':>10} {'PyG start':>10} {'PyG train':>10} {'PyG flush':>10} "
              f"{'ours start':>10} {'ours train':>10} {'ours flush':>10}")
        for r in rows:
            p, o = r["rss"].get("pyg"), r["rss"].get("ours")
            print(f"{r['nodes']:>10,} {rss_cell(p, 'start'):>10} {rss_cell(p, 'train'):>10} "
                  f"{rss_cell(p, 'flush'):>10} {rss_cell(o, 'start'):>10} "
                  f"{rss_cell(o, 'train'):>10} {rss_cell(o, 'flush'):>10}")
    notes = [f"{r['nodes']:,} nodes, {name}: flush not run: {reason}"
             for r in rows for name, reason in r["skip_flush"].items() if reason]
    notes += [f"{r['nodes']:,} nodes, {name}: RSS worker {rss['error']}"
              for r in rows for name, rss in r["rss"].items() if "error" in rss]
    for note in notes:
        print("note:", note)
    last = rows[-1]
    ratio = last["ours_vs_ref"]
    print(f"\nours at {last['nodes']:,} nodes: {ratio:.2f}x ours at {base} nodes "
          f"(target: within 1.25x): {'met' if ratio <= 1.25 else 'MISSED'}")


def thp_line() -> str:
    r"""Transparent huge pages: the system mode, and whether PyTorch asks for
    them (``THP_MEM_ALLOC_ENABLE=1``). Random rows of a multi-GiB memory table
    miss the TLB on every access with 4 KiB pages: that, not the work done,
    is what grows with the number of nodes."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            mode = f.read().strip()
    except OSError:
        mode = "unknown"
    return (f"transparent huge pages: {mode}; "
            f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(thp_line())
    print(f"memory_dim={args.memory_dim} time_dim={args.time_dim} "
          f"raw_msg_dim={args.raw_msg_dim} batch_size={args.batch_size} "
          f"n_id~{args.n_id} warmup={args.warmup} batches={args.batches} "
          f"reps={args.reps} seed={args.seed}", flush=True)
    # RSS first: a child process starts with its parent's peak RSS (Linux
    # carries ru_maxrss over fork and exec), so the workers are started while
    # this process holds nothing but the imports.
    rss = {}
    for num_nodes in [] if args.no_rss else args.sizes:
        start = time.perf_counter()
        rss[num_nodes] = {name: measure_rss(name, num_nodes, args) for name in CONTENDERS}
        print(f"{num_nodes:,} nodes: peak RSS measured "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    rows = []
    for num_nodes in args.sizes:
        start = time.perf_counter()
        row = time_size(num_nodes, args.sizes[0], args)
        row["rss"] = rss.get(num_nodes, {})
        rows.append(row)
        print(f"{num_nodes:,} nodes: PyG {row['batch_ms']['pyg']:.2f} ms/batch, "
              f"ours {row['batch_ms']['ours']:.2f} ms/batch (build PyG "
              f"{row['build_s']['pyg']:.1f} s, ours {row['build_s']['ours']:.1f} s; "
              f"{time.perf_counter() - start:.0f} s for this size)", flush=True)
    report(rows, args)


if __name__ == "__main__":
    main()
