"""Peak memory of the synthetic generator.

Generates one synthetic stream (``pyg_mspipe.datasets.synthetic_events``) in
this fresh process and prints the peak resident set size (``ru_maxrss``)
after the imports and after the generation, the size of the output tensors,
and checks the stream (sorted, ids in range, no self-loops). The issue's
bound: 20,000,000 events within 24 GB.

    python benchmarks/bench_synthetic.py --events 20000000 --nodes 1000000
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time

import torch

from pyg_mspipe.datasets import synthetic_events

GIB = 1 << 30


def peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--msg-dim", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit-gib", type=float, default=24.0,
                        help="the bound the peak must stay within")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"python {platform.python_version()}, {platform.machine()}")
    print(f"synthetic_events(num_events={args.events:,}, num_nodes={args.nodes:,}, "
          f"alpha={args.alpha}, msg_dim={args.msg_dim}, seed={args.seed})")
    before = peak_rss_bytes()
    start = time.perf_counter()
    data = synthetic_events(args.events, args.nodes, alpha=args.alpha, msg_dim=args.msg_dim,
                            seed=args.seed)
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    output = sum(data[key].numel() * data[key].element_size()
                 for key in ("src", "dst", "t", "msg"))
    ok = (bool((data.t[1:] >= data.t[:-1]).all()) and int(data.src.min()) >= 0
          and int(torch.maximum(data.src, data.dst).max()) < args.nodes
          and not bool((data.src == data.dst).any()))
    print(f"peak RSS after imports:    {before / GIB:8.2f} GiB")
    print(f"peak RSS after generating: {peak / GIB:8.2f} GiB")
    print(f"output tensors:            {output / GIB:8.2f} GiB "
          f"({output / args.events:.0f} bytes per event)")
    print(f"generation time:           {seconds:8.1f} s")
    print(f"stream checks (sorted, ids in range, no self-loops): {'ok' if ok else 'FAILED'}")
    within = peak <= args.limit_gib * GIB
    print(f"within {args.limit_gib:g} GiB: {'yes' if within else 'NO'}")
    if not (ok and within):
        sys.exit(1)


if __name__ == "__main__":
    main()
