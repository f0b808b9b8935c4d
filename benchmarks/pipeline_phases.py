"""Where a pipelined epoch at staleness_bound=0 spends its time, against the
sequential one: PyG's example loop with each phase of a training step timed
on its own (the next batch, the neighbourhood, the memory read, embedding
and loss, the memory update, backward, the optimizer step, detach).

The two contenders alternate (order flipped every round), each epoch from
the same seed, on the first --max-events CollegeMsg training events; the
table gives the median milliseconds per batch of each phase over the rounds
after the first two.

With --switches it counts, instead of milliseconds, the training thread's
voluntary context switches per batch in each phase (Linux): each one is a
wait, for the GIL held by another thread or for a fetch, so the count shows
where the threads contend, free of this host's timing noise.

With --gil-probe it instead times ``loss.backward()`` of single batches
with and without another thread running pure Python (which holds the GIL
between its switch intervals): a backward that never takes the GIL is not
slowed by it.

    python benchmarks/pipeline_phases.py --model jodie --rounds 12
    python benchmarks/pipeline_phases.py --model jodie --rounds 6 --switches

(CollegeMsg and 20,000 events unless --dataset and --max-events say
otherwise.)
"""
from __future__ import annotations

import collections
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import contender  # noqa: E402
from common import base_parser, prepare  # noqa: E402

from pyg_mspipe.engine.models import MODELS  # noqa: E402
from pyg_mspipe.engine.training import _nodes  # noqa: E402

CONTENDERS = {"seq": {}, "s0": {"staleness_bound": 0, "schedule": "fixed"}}
PHASES = ("next", "sample", "memory", "embed+loss", "update", "backward", "step", "detach")


def step_parts(model, nl, batch, data, assoc, device, clock, times):
    # One training step of engine.training.train_steps, phase by phase.
    a = clock()
    model.optimizer.zero_grad()
    n_id, edge_index, t_e, msg_e = _nodes(model, nl, batch.n_id, data, device)
    assoc[n_id] = torch.arange(n_id.size(0), device=device)
    b = clock()
    z, last_update = model.memory(n_id)
    c = clock()
    h = model.embed(z, last_update, edge_index, t_e, msg_e)
    pos = model.score(h, last_update, assoc, batch.src, batch.dst, batch.t)
    neg = model.score(h, last_update, assoc, batch.src, batch.neg_dst, batch.t)
    loss = model.criterion(pos, torch.ones_like(pos)) + model.criterion(neg, torch.zeros_like(neg))
    d = clock()
    model.update_memory(h, assoc, batch.src, batch.dst, batch.t, batch.msg)
    if nl is not None:
        nl.insert(batch.src, batch.dst)
    e = clock()
    for name, span in zip(PHASES[1:5], (b - a, c - b, d - c, e - d)):
        times[name] += span
    return loss


def switches() -> int:
    # the calling thread's voluntary context switches so far
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def epoch(name, options, data, train_data, args, device, clock=time.perf_counter) -> dict:
    model, loader, nl = contender(name, options, data, args, device)(train_data)()
    model.memory.train(), model.gnn.train(), model.link_pred.train()
    model.memory.reset_state()
    if nl is not None:
        nl.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    times = collections.defaultdict(float)
    batches = iter(loader)
    while True:
        a = clock()
        batch = next(batches, None)
        times["next"] += clock() - a
        if batch is None:
            break
        loss = step_parts(model, nl, batch, data, assoc, device, clock, times)
        f = clock()
        loss.backward()
        g = clock()
        model.optimizer.step()
        h = clock()
        model.memory.detach()
        times["backward"] += g - f
        times["step"] += h - g
        times["detach"] += clock() - h
    return {k: v / len(loader) for k, v in times.items()}


def gil_probe(name, data, train_data, args, device):
    model, loader, nl = contender(name, {"prefetch": 0}, data, args, device)(train_data)()
    model.memory.train(), model.gnn.train(), model.link_pred.train()
    model.memory.reset_state()
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    hold, stop = threading.Event(), threading.Event()

    def python_loop():
        while not stop.is_set():
            if hold.is_set():
                total = 0
                for i in range(100_000):
                    total += i
            else:
                time.sleep(0.0005)

    thread = threading.Thread(target=python_loop, daemon=True)
    thread.start()
    seconds = {"alone": [], "beside a Python thread": []}
    try:
        for i, batch in enumerate(loader):
            loss = step_parts(model, nl, batch, data, assoc, device, time.perf_counter,
                              collections.defaultdict(float))
            key = list(seconds)[i % 2]
            if i % 2:
                hold.set()
                time.sleep(0.001)  # (the other thread takes the GIL)
            begin = time.perf_counter()
            loss.backward()
            seconds[key].append(time.perf_counter() - begin)
            hold.clear()
            model.optimizer.step()
            model.memory.detach()
    finally:
        stop.set()
        thread.join(5)
    for key, values in seconds.items():
        print(f"backward {key}: median {statistics.median(values) * 1e3:.3f} ms "
              f"over {len(values)} batches")


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="jodie")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gil-probe", action="store_true")
    parser.add_argument("--switches", action="store_true")
    parser.set_defaults(dataset="college", rounds=12, max_events=20000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, data, train_data = prepare(args)
    if args.gil_probe:
        gil_probe(args.model, data, train_data, args, device)
        return
    results = collections.defaultdict(list)
    for r in range(args.rounds):
        order = list(CONTENDERS) if r % 2 == 0 else list(CONTENDERS)[::-1]
        for name in order:
            times = epoch(args.model, CONTENDERS[name], data, train_data, args, device,
                          switches if args.switches else time.perf_counter)
            if r >= 2:
                results[name].append(times)
    unit, scale, digits = ("voluntary context switches", 1, 2) if args.switches \
        else ("ms", 1e3, 3)
    print(f"\n{args.model}, {unit} per batch, median of {len(results['seq'])} rounds")
    print("| phase | seq | s0 | s0 - seq |\n| --- | ---: | ---: | ---: |")
    for phase in (*PHASES, "total"):
        values = {}
        for name, rounds in results.items():
            values[name] = statistics.median(
                sum(t.values()) if phase == "total" else t[phase] for t in rounds) * scale
        print(f"| {phase} | {values['seq']:.{digits}f} | {values['s0']:.{digits}f} | "
              f"{values['s0'] - values['seq']:+.{digits}f} |")


if __name__ == "__main__":
    main()
