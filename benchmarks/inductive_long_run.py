"""Long runs with the inductive split: PyG's TGN recipe trained with PyG's own
classes (torch_geometric's TGNMemory, LastNeighborLoader, TemporalDataLoader)
or with ours, on the split and evaluation of `pyg-mspipe train --split
inductive --negatives random`, with per-epoch diagnostics.

Per epoch it writes one JSON line: the training loss; validation and test AP
on all events and on the new-node subset (as the command line evaluates
them); test AP pooled over subsets of the test events (with a new node or
not, with an endpoint never seen before, by the time since an endpoint's
previous event); the time encoder's weights; the inputs the time encoder
received in training, validation and test; and, with --clamp-probe, test AP
once more with the time encoder's inputs clamped to the largest one of that
epoch's training (the model unchanged).

    python benchmarks/inductive_long_run.py --classes ours --epochs 100 \
        --out benchmarks/results/inductive_long_ours.jsonl
    python benchmarks/inductive_long_run.py --classes pyg --epochs 100 \
        --out benchmarks/results/inductive_long_pyg.jsonl

--time-init dyglib starts the time encoder from DyGLib's (and the TGN
authors') weights, w_i = 10^(-9 i / (d - 1)), b = 0, instead of PyG's
uniform draw; --clamp-train D clamps every time delta the encoder sees
(training and evaluation) to at most D seconds (variants for a follow-up;
the runs of docs/reproduce.md use neither).

--save-dir keeps each epoch's state; --posthoc REF EPOCH then evaluates
EPOCH with one part's parameters (time encoder, memory GRU, attention, link
predictor) taken from epoch REF, and --posthoc-pyg EPOCH evaluates it with
PyG's TGNMemory and LastNeighborLoader as well. The findings are in
docs/reproduce.md, "Long runs with the inductive split".
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from contextlib import nullcontext

import torch
import torch_geometric.loader
import torch_geometric.nn
import torch_geometric.nn.models.tgn as pyg_tgn

import pyg_mspipe
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.evaluation import EvalProtocol, evaluate_link_prediction
from pyg_mspipe.engine.metrics import average_precision
from pyg_mspipe.engine.splits import inductive_split, transductive_split
from pyg_mspipe.engine.training import build_tgn, train_epoch

HOUR, DAY = 3600, 86400


class TimeProbe(torch.nn.Module):
    """Wraps the shared time encoder: records the inputs it receives (when
    `record` is a list) and clamps them to `clamp` seconds (when set)."""

    def __init__(self, enc: torch.nn.Module):
        super().__init__()
        self.enc = enc
        self.out_channels = enc.out_channels
        self.record: list | None = None
        self.clamp: float | None = None

    @property
    def lin(self):
        return self.enc.lin

    def forward(self, t):
        if self.record is not None:
            self.record.append(t.detach().reshape(-1).double().clone())
        if self.clamp is not None:
            t = t.clamp(max=self.clamp)
        return self.enc(t)


def build(classes: str, num_nodes: int, msg_dim: int, split, batch_size: int):
    # The order of setup_run (pyg_mspipe/cli/run.py): model, neighbour
    # loader, training loader, evaluation loaders.
    if classes == "pyg":
        model = build_tgn(num_nodes, msg_dim, memory_cls=torch_geometric.nn.TGNMemory,
                          message_cls=pyg_tgn.IdentityMessage,
                          aggregator_cls=pyg_tgn.LastAggregator)
        nl = pyg_tgn.LastNeighborLoader(num_nodes, size=10)
        loader_cls = torch_geometric.loader.TemporalDataLoader
        train_loader = loader_cls(split.train, batch_size=batch_size, neg_sampling_ratio=1.0)
    else:
        model = build_tgn(num_nodes, msg_dim)
        nl = pyg_mspipe.LastNeighborLoader(num_nodes, size=10)
        loader_cls = pyg_mspipe.TemporalDataLoader
        train_loader = loader_cls(split.train, batch_size=batch_size, neg_sampling_ratio=1.0,
                                  memory=model.memory, neighbor_loader=nl)
    val_loader, test_loader = (loader_cls(d, batch_size=batch_size, neg_sampling_ratio=1.0)
                               for d in (split.val, split.test))
    return model, nl, train_loader, val_loader, test_loader


def snapshot(memory, nl):
    if isinstance(memory, torch_geometric.nn.TGNMemory):
        mem = (memory.memory.clone(), memory.last_update.clone(), dict(memory.msg_s_store),
               dict(memory.msg_d_store))
    else:
        mem = copy.deepcopy(memory.state_dict())
    if isinstance(nl, pyg_tgn.LastNeighborLoader):
        return mem, (nl.neighbors.clone(), nl.e_id.clone(), nl.cur_e_id)
    return mem, copy.deepcopy(nl.state_dict())


def restore(memory, nl, snap):
    mem, nls = snap
    if isinstance(memory, torch_geometric.nn.TGNMemory):
        memory.memory.copy_(mem[0])
        memory.last_update.copy_(mem[1])
        memory.msg_s_store, memory.msg_d_store = dict(mem[2]), dict(mem[3])
    else:
        memory.load_state_dict(mem)
    if isinstance(nl, pyg_tgn.LastNeighborLoader):
        nl.neighbors.copy_(nls[0])
        nl.e_id.copy_(nls[1])
        nl.cur_e_id = nls[2]
    else:
        nl.load_state_dict(nls)


def previous_times(split) -> tuple[torch.Tensor, torch.Tensor]:
    """For each event of the stream the memory sees (training, validation,
    test), the time since each endpoint's previous event ([E, 2]; the event
    time itself where there is none: last_update = 0) and whether there is
    none ([E, 2])."""
    s = split.stream
    last = torch.full((split.full.num_nodes,), -1, dtype=torch.long)
    delta = torch.empty(s.num_events, 2, dtype=torch.long)
    cold = torch.empty(s.num_events, 2, dtype=torch.bool)
    for i, (u, v, t) in enumerate(zip(s.src.tolist(), s.dst.tolist(), s.t.tolist())):
        for k, n in enumerate((u, v)):
            cold[i, k] = last[n] < 0
            delta[i, k] = t - max(int(last[n]), 0)
        last[u] = last[v] = t
    return delta, cold


def subsets(split, delta, cold) -> dict[str, torch.Tensor]:
    """Masks of the test events: by new node, by cold endpoint, by the
    largest time since an endpoint's previous event."""
    n0 = split.train.num_events + split.val.num_events
    d, c = delta[n0:], cold[n0:]
    test = split.test
    is_new = torch.zeros(split.full.num_nodes, dtype=torch.bool)
    is_new[split.new_nodes] = True
    masked = torch.zeros_like(is_new)
    masked[split.masked_nodes] = True
    new = is_new[test.src] | is_new[test.dst]
    warm_max = torch.where(c, torch.zeros_like(d), d).amax(1)
    any_cold = c.any(1)
    train_max = int(delta[:split.train.num_events][~cold[:split.train.num_events]].max())
    out = {"all": torch.ones_like(new), "new": new, "old": ~new,
           "masked": masked[test.src] | masked[test.dst], "cold": any_cold,
           "warm": ~any_cold}
    bins = [(0, HOUR, "<1h"), (HOUR, DAY, "1h-1d"), (DAY, 7 * DAY, "1d-1w"),
            (7 * DAY, train_max, "1w-trainmax"), (train_max, math.inf, ">trainmax")]
    for lo, hi, name in bins:
        out[f"dt {name}"] = ~any_cold & (warm_max >= lo) & (warm_max < hi)
    return out


class ScoreRecorder:
    """Records the logits the evaluation loop scores (positives first)."""

    def __init__(self, model):
        self.model, self.score = model, model.score
        self.out: list[torch.Tensor] = []

    def __enter__(self):
        def score(*args):
            out = self.score(*args)
            self.out.append(out.detach().view(-1).clone())
            return out
        self.model.score = score
        return self

    def __exit__(self, *exc):
        del self.model.score

    def pos_neg(self) -> tuple[torch.Tensor, torch.Tensor]:
        pos, neg = [], []
        for out in self.out:  # one negative per positive
            pos.append(out[: out.numel() // 2])
            neg.append(out[out.numel() // 2:])
        return torch.cat(pos), torch.cat(neg)


def pooled_ap(pos, neg, masks) -> dict[str, float | None]:
    out = {}
    for name, m in masks.items():
        if int(m.sum()) == 0:
            out[name] = None
            continue
        p, n = pos[m], neg[m]
        y = torch.cat([torch.ones(p.numel()), torch.zeros(n.numel())])
        out[name] = average_precision(y, torch.cat([p, n]).sigmoid())
    return out


def input_stats(record: list) -> dict:
    x = torch.cat(record)
    q = torch.quantile(x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))
                         [:100000]], torch.tensor([0.5, 0.99], dtype=x.dtype))
    return {"n": x.numel(), "p50": float(q[0]), "p99": float(q[1]), "max": float(x.max()),
            "min": float(x.min())}


def evaluate(model, nl, split, protocol, loader, part, probe):
    model.memory.eval()  # (leaving training mode flushes; the snapshot is after it)
    snap = snapshot(model.memory, nl)
    probe.record = []
    kwargs = dict(metrics=("ap", "auc"))
    recorder = ScoreRecorder(model)
    with recorder:
        scores = evaluate_link_prediction(model, loader, nl, split.stream,
                                          sampler=protocol.sampler(split, part), **kwargs)
    record, probe.record = probe.record, None
    restore(model.memory, nl, snap)
    new = evaluate_link_prediction(model, loader, nl, split.stream,
                                   sampler=protocol.sampler(split, part, new=True),
                                   new_nodes=split.new_nodes, **kwargs)
    return scores, new, recorder, record, snap


def print_gaps(eval_seed: int):
    """Per part of the inductive split (and of the transductive one): events,
    those with an endpoint never seen before (the memory's last_update = 0:
    the time encoder sees the event time itself), the range of those times,
    and the quantiles of the other endpoints' time since their previous
    event (what the memory's messages encode)."""
    data = resolve_data("college")
    splits = {"inductive": inductive_split(data, 0.15, 0.15, new_node_ratio=0.1,
                                           seed=eval_seed),
              "transductive": transductive_split(data)}
    print("split | part | events | with a never-seen endpoint | their t - 0 (s) | "
          "other gaps p50 / p99 / max (s)")
    for name, split in splits.items():
        delta, cold = previous_times(split)
        n_tr, n_va = split.train.num_events, split.val.num_events
        for part, sl in (("train", slice(0, n_tr)), ("val", slice(n_tr, n_tr + n_va)),
                         ("test", slice(n_tr + n_va, None))):
            d, c = delta[sl], cold[sl]
            warm = d[~c].double()
            q = torch.quantile(warm, torch.tensor([0.5, 0.99], dtype=torch.double))
            coldd = d[c]
            print(f"{name} | {part} | {d.size(0)} | {int(c.any(1).sum())} "
                  f"({100 * float(c.any(1).double().mean()):.1f}%) | "
                  f"{int(coldd.min())}-{int(coldd.max())} | "
                  f"{float(q[0]):.0f} / {float(q[1]):.0f} / {int(warm.max())}")


def evaluate_epoch(model, nl, split, protocol, loaders, probe, masks, clamp):
    """Validation and test as the command line evaluates them, the test
    subsets, and with `clamp` the test once more with the time encoder's
    inputs clamped to it."""
    val, val_new, _, val_inputs, _ = evaluate(model, nl, split, protocol, loaders[0],
                                              "val", probe)
    test, test_new, rec, test_inputs, snap = evaluate(model, nl, split, protocol,
                                                      loaders[1], "test", probe)
    pos, neg = rec.pos_neg()
    row = {"val": val, "val_new": val_new, "test": test, "test_new": test_new,
           "test_subset_ap": pooled_ap(pos, neg, masks)}
    if clamp is not None:
        # The test evaluation again from the same state (the memory and
        # neighbour loader put back), the time encoder's inputs clamped.
        restore(model.memory, nl, snap)
        old_clamp, probe.clamp = probe.clamp, clamp
        rec = ScoreRecorder(model)
        with rec:
            row["test_clamped"] = evaluate_link_prediction(
                model, loaders[1], nl, split.stream, sampler=protocol.sampler(split, "test"),
                metrics=("ap", "auc"))
        probe.clamp = old_clamp
        pos, neg = rec.pos_neg()
        row["test_subset_ap_clamped"] = pooled_ap(pos, neg, masks)
    return row, val_inputs, test_inputs


#: Parameter groups of the post-hoc swaps (state-dict key prefixes).
PARTS = {"time encoder": ("memory", "time_enc."), "memory GRU": ("memory", "gru."),
         "embedding (attention)": ("gnn", "conv."), "link predictor": ("link_pred", "")}


def posthoc(save_dir: str, ref: int, epoch: int, eval_seed: int, batch_size: int):
    """Evaluates the state saved after training epoch `epoch` (validation,
    then test from where validation leaves the memory, as the command line
    does): as saved, with the time encoder's inputs clamped to that epoch's
    largest training one, and with the parameters of one part taken from
    epoch `ref`. Also the mean memory norm of the test events' nodes when
    test starts, and the test AP pooled over each quarter of the test
    events (in time order)."""
    protocol = EvalProtocol("inductive", negatives="random", seed=eval_seed)
    data = resolve_data("college")
    split = inductive_split(data, 0.15, 0.15, new_node_ratio=0.1, seed=eval_seed)
    saved = {e: torch.load(f"{save_dir}/epoch{e}.pt") for e in (ref, epoch)}
    test_nodes = torch.cat([split.test.src, split.test.dst]).unique()
    order = torch.arange(split.test.num_events)
    quarters = {f"q{q + 1}": (order * 4 // split.test.num_events) == q for q in range(4)}
    variants = [("as saved", None, None), ("clamped", None, None)]
    variants += [(f"{name} from epoch {ref}", key, prefix)
                 for name, (key, prefix) in PARTS.items()]
    variants += [(f"epoch {ref} as saved", None, None)]
    print(f"post-hoc: epoch {epoch}, parts from epoch {ref}")
    print("variant | val AP | test AP | test new-node-event AP | memory norm at test start | "
          "test AP pooled over its four quarters in time")
    for name, key, prefix in variants:
        torch.manual_seed(0)
        model, nl, _, val_loader, test_loader = build("ours", split.full.num_nodes,
                                                      data.msg.size(-1), split, batch_size)
        probe = TimeProbe(model.memory.time_enc)
        model.memory.time_enc = model.gnn.time_enc = probe
        state = saved[ref] if name.startswith(f"epoch {ref}") else saved[epoch]
        for k in ("memory", "gnn", "link_pred"):
            getattr(model, k).load_state_dict(state[k])
        nl.load_state_dict(state["nl"])
        if key is not None:  # one part's parameters from the reference epoch
            own = getattr(model, key).state_dict()
            getattr(model, key).load_state_dict(
                own | {k: v for k, v in saved[ref][key].items()
                       if k.startswith(prefix) and k not in ("memory", "last_update")
                       and "extra_state" not in k})
        if name == "clamped":
            probe.clamp = state["train_max"]
        model.memory.eval()
        val = evaluate_link_prediction(model, val_loader, nl, split.stream,
                                       sampler=protocol.sampler(split, "val"))
        with torch.no_grad():
            norm = float(model.memory(test_nodes)[0].norm(dim=-1).mean())
        snap = snapshot(model.memory, nl)
        rec = ScoreRecorder(model)
        with rec:
            test = evaluate_link_prediction(model, test_loader, nl, split.stream,
                                            sampler=protocol.sampler(split, "test"))
        pos, neg = rec.pos_neg()
        quarter = pooled_ap(pos, neg, quarters)
        restore(model.memory, nl, snap)
        test_new = evaluate_link_prediction(model, test_loader, nl, split.stream,
                                            sampler=protocol.sampler(split, "test", new=True),
                                            new_nodes=split.new_nodes)
        print(f"{name} | {val['ap']:.4f} | {test['ap']:.4f} | {test_new['ap']:.4f} | "
              f"{norm:.4f} | " + " ".join(f"{v:.4f}" for v in quarter.values()), flush=True)


def posthoc_pyg(save_dir: str, epoch: int, eval_seed: int, batch_size: int):
    """Validation, then test, from the state saved after training epoch
    `epoch`, evaluated by our classes and by PyG's TGNMemory and
    LastNeighborLoader loaded with the same parameters, memory (after the
    flush that leaving training mode does) and neighbours."""
    protocol = EvalProtocol("inductive", negatives="random", seed=eval_seed)
    data = resolve_data("college")
    split = inductive_split(data, 0.15, 0.15, new_node_ratio=0.1, seed=eval_seed)
    state = torch.load(f"{save_dir}/epoch{epoch}.pt")
    models = {}
    for classes in ("ours", "pyg"):
        model, nl, _, val_loader, test_loader = build(classes, split.full.num_nodes,
                                                      data.msg.size(-1), split, batch_size)
        probe = TimeProbe(model.memory.time_enc)
        model.memory.time_enc = model.gnn.time_enc = probe
        models[classes] = (model, nl, val_loader, test_loader)
    ours, ours_nl = models["ours"][:2]
    for k in ("memory", "gnn", "link_pred"):
        getattr(ours, k).load_state_dict(state[k])
    ours_nl.load_state_dict(state["nl"])
    ours.memory.eval()  # the flush
    pyg, pyg_nl = models["pyg"][:2]
    pyg.memory.eval()
    params = {k: v for k, v in state["memory"].items() if k.startswith(("time_enc.", "gru."))}
    pyg.memory.load_state_dict(params, strict=False)
    for k in ("gnn", "link_pred"):
        getattr(pyg, k).load_state_dict(state[k])
    with torch.no_grad():
        pyg.memory.memory.copy_(ours.memory.memory)
        pyg.memory.last_update.copy_(ours.memory.last_update)
    pyg_nl.neighbors.copy_(state["nl"]["neighbors"])
    pyg_nl.e_id.copy_(state["nl"]["e_id"])
    pyg_nl.cur_e_id = state["nl"]["cur_e_id"]
    print(f"epoch {epoch}: classes | val AP | test AP")
    for classes, (model, nl, val_loader, test_loader) in models.items():
        val = evaluate_link_prediction(model, val_loader, nl, split.stream,
                                       sampler=protocol.sampler(split, "val"))
        test = evaluate_link_prediction(model, test_loader, nl, split.stream,
                                        sampler=protocol.sampler(split, "test"))
        print(f"{classes} | {val['ap']:.6f} | {test['ap']:.6f}", flush=True)


def summarize(paths: list[str]):
    """Per run: the best test AP and its epoch, the lowest test AP from
    there on, the best validation epoch and its test AP, and the pooled test
    AP of the subsets at the best test epoch and at the lowest one after it."""
    cols = ["new", "old", "cold", "dt <1h", "dt 1h-1d", "dt 1d-1w", "dt 1w-trainmax",
            "dt >trainmax"]
    for path in paths:
        with open(path) as f:
            lines = [json.loads(line) for line in f]
        head, rows = lines[0], lines[1:]
        a = head["args"]
        best = max(rows, key=lambda r: r["test"]["ap"])
        low = min((r for r in rows if r["epoch"] >= best["epoch"]),
                  key=lambda r: r["test"]["ap"])
        by_val = max(rows, key=lambda r: r["val"]["ap"])
        print(f"{path}: classes={a['classes']} threads={a['threads']} "
              f"time_init={a['time_init']} clamp_train={a['clamp_train']} "
              f"epochs={len(rows)}")
        print(f"  best test AP {best['test']['ap']:.4f} at epoch {best['epoch']}; lowest from "
              f"there on {low['test']['ap']:.4f} at epoch {low['epoch']} (drop "
              f"{100 * (best['test']['ap'] - low['test']['ap']):.2f} points); best val "
              f"epoch {by_val['epoch']} (val {by_val['val']['ap']:.4f}): test "
              f"{by_val['test']['ap']:.4f}, test_new {by_val['test_new']['ap']:.4f}")
        every = [r for r in rows if r["epoch"] % 10 == 0]
        for key in ("val", "test", "test_new"):
            print(f"  {key} AP at epochs 10, 20, ...: "
                  + " ".join(f"{r[key]['ap']:.3f}" for r in every))
        print("  " + " | ".join(["epoch", "loss", "val", "test", "test_new", "clamped"]
                                + cols))
        for r in (best, low):
            sub = r["test_subset_ap"]
            clamped = r.get("test_clamped", {}).get("ap")
            vals = [f"{r['epoch']}", f"{r['loss']:.4f}", f"{r['val']['ap']:.4f}",
                    f"{r['test']['ap']:.4f}", f"{r['test_new']['ap']:.4f}",
                    "-" if clamped is None else f"{clamped:.4f}"]
            vals += ["-" if sub[c] is None else f"{sub[c]:.4f}" for c in cols]
            print("  " + " | ".join(vals))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", choices=["pyg", "ours"], default="ours")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12345, help="the CLI's default --seed")
    parser.add_argument("--eval-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-init", choices=["pyg", "dyglib"], default="pyg")
    parser.add_argument("--clamp-train", type=float, default=None)
    parser.add_argument("--clamp-probe", action="store_true")
    parser.add_argument("--fresh-negatives", action="store_true",
                        help="evaluate under torch.random.fork_rng, so that the evaluation's "
                             "torch.manual_seed does not rewind the training RNG (without: "
                             "every epoch after the first draws the same negatives)")
    parser.add_argument("--out", help="JSON lines, one per epoch")
    parser.add_argument("--summarize", nargs="+", metavar="JSONL",
                        help="print the summary table of earlier runs' JSON lines instead")
    parser.add_argument("--save-dir", default=None,
                        help="save the model, memory and neighbour loader after each "
                             "training epoch from --save-from on (--classes ours)")
    parser.add_argument("--save-from", type=int, default=1)
    parser.add_argument("--posthoc", nargs=2, type=int, metavar=("REF", "EPOCH"),
                        help="from --save-dir: evaluate EPOCH's saved state as saved, with "
                             "the time encoder's inputs clamped, and with each part's "
                             "parameters taken from epoch REF instead")
    parser.add_argument("--posthoc-pyg", type=int, metavar="EPOCH",
                        help="from --save-dir: evaluate EPOCH's saved state with our classes "
                             "and with PyG's TGNMemory and LastNeighborLoader given the same "
                             "parameters and state")
    parser.add_argument("--gaps", action="store_true",
                        help="print the split's time gaps per part (data only) and exit")
    args = parser.parse_args(argv)
    if args.gaps:
        print_gaps(args.eval_seed)
        return
    if args.summarize:
        summarize(args.summarize)
        return
    if args.posthoc_pyg:
        torch.set_num_threads(args.threads)
        posthoc_pyg(args.save_dir, args.posthoc_pyg, args.eval_seed, args.batch_size)
        return
    if args.posthoc:
        torch.set_num_threads(args.threads)
        posthoc(args.save_dir, *args.posthoc, args.eval_seed, args.batch_size)
        return
    if args.out is None:
        parser.error("--out is required (or --summarize)")

    torch.set_num_threads(args.threads)
    protocol = EvalProtocol("inductive", negatives="random", seed=args.eval_seed)
    torch.manual_seed(args.seed)
    data = resolve_data("college")
    split = inductive_split(data, 0.15, 0.15, new_node_ratio=0.1, seed=args.eval_seed)
    model, nl, train_loader, val_loader, test_loader = build(
        args.classes, split.full.num_nodes, data.msg.size(-1), split, args.batch_size)
    enc = model.memory.time_enc
    if args.time_init == "dyglib":
        with torch.no_grad():
            dim = enc.lin.weight.size(0)
            enc.lin.weight.copy_((1 / 10 ** torch.linspace(0, 9, dim)).view(dim, 1))
            enc.lin.bias.zero_()
    probe = TimeProbe(enc)
    probe.clamp = args.clamp_train
    model.memory.time_enc = model.gnn.time_enc = probe
    w0 = enc.lin.weight.detach().view(-1).clone()
    delta, cold = previous_times(split)
    masks = subsets(split, delta, cold)
    sizes = {k: int(v.sum()) for k, v in masks.items()}
    header = {"args": vars(args), "split": split.to_dict(), "test_subset_sizes": sizes,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    with open(args.out, "w") as f:
        f.write(json.dumps(header) + "\n")
    print(json.dumps(header), flush=True)
    w_prev = w0.clone()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        probe.record = []
        loss = train_epoch(model, train_loader, nl, split.stream)
        train_inputs, probe.record = probe.record, None
        train_s = time.perf_counter() - start
        if args.save_dir is not None and epoch >= args.save_from:
            torch.save({k: getattr(model, k).state_dict() for k in ("memory", "gnn", "link_pred")}
                       | {"nl": nl.state_dict(), "train_max": float(torch.cat(train_inputs).max())},
                       f"{args.save_dir}/epoch{epoch}.pt")
        # (the evaluation seeds the global RNG, as PyG's example does)
        rng = torch.random.fork_rng(devices=[]) if args.fresh_negatives else nullcontext()
        with rng:
            row, val_inputs, test_inputs = evaluate_epoch(
                model, nl, split, protocol, (val_loader, test_loader), probe, masks,
                float(torch.cat(train_inputs).max()) if args.clamp_probe else None)
        row = {"epoch": epoch, "loss": loss, "train_s": train_s, **row}
        val, val_new, test, test_new = (row[k] for k in ("val", "val_new", "test", "test_new"))
        w = enc.lin.weight.detach().view(-1)
        row["time_enc"] = {"w_abs_mean": float(w.abs().mean()), "w_abs_max": float(w.abs().max()),
                           "w_abs_min": float(w.abs().min()),
                           "w_change_from_init_max": float((w - w0).abs().max()),
                           "w_change_epoch_max": float((w - w_prev).abs().max()),
                           "b_abs_mean": float(enc.lin.bias.detach().abs().mean())}
        w_prev = w.clone()
        row["time_inputs"] = {"train": input_stats(train_inputs),
                              "val": input_stats(val_inputs),
                              "test": input_stats(test_inputs)}
        row["eval_s"] = time.perf_counter() - start - train_s
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        sub = row["test_subset_ap"]
        extra = ""
        if args.clamp_probe:
            extra = f" test_clamped {row['test_clamped']['ap']:.4f}"
        print(f"epoch {epoch:3d} loss {loss:.4f} val {val['ap']:.4f} val_new "
              f"{val_new['ap']:.4f} test {test['ap']:.4f} test_new {test_new['ap']:.4f}"
              f" | pooled new {sub['new']:.4f} old {sub['old']:.4f} cold {sub['cold']:.4f}"
              f"{extra} | {train_s:.1f}s+{row['eval_s']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
