"""PyG's TGNMemory versus pyg_mspipe.TGNMemory, timed batch by batch.

A lower-noise companion of bench_memory.py. One training epoch of PyG's
examples/tgn.py loop (PyG's loaders, TransformerConv embedding) is driven by
PyG's memory; ours runs beside it on exactly the same inputs (the same n_id,
the same events) and, after every optimizer step, gets the same parameters
(copied outside the timed region). Every batch times both memories'
forward + update_state back to back, alternating which goes first, so the
noise of this shared machine hits both alike. Prints, per epoch, the summed
memory-module seconds of each and their ratio, and the median over epochs.

    python benchmarks/bench_memory_interleaved.py --dataset wikipedia --rounds 3
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch_geometric.loader import TemporalDataLoader
from torch_geometric.nn import TGNMemory as PyGTGNMemory
from torch_geometric.nn.models.tgn import LastNeighborLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, interleaved_rounds, prepare  # noqa: E402

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory  # noqa: E402
from pyg_mspipe.engine.training import build_tgn  # noqa: E402


def epoch(data, train_data, args, device):
    torch.manual_seed(args.seed)
    model = build_tgn(data.num_nodes, data.msg.size(-1), memory_cls=PyGTGNMemory,
                      device=device)
    ref = model.memory
    ours = TGNMemory(data.num_nodes, data.msg.size(-1), 100, 100,
                     IdentityMessage(data.msg.size(-1), 100, 100), LastAggregator()).to(device)
    ours.load_state_dict(ref.state_dict())
    gnn, link_pred, opt = model.gnn, model.link_pred, model.optimizer
    loader = TemporalDataLoader(train_data, batch_size=args.batch_size, neg_sampling_ratio=1.0)
    neighbor_loader = LastNeighborLoader(data.num_nodes, size=10, device=device)
    assoc = torch.empty(data.num_nodes, dtype=torch.long, device=device)
    for m in (ref, ours, gnn, link_pred):
        m.train()
    ref.reset_state()
    ours.reset_state()
    seconds = {"pyg": 0.0, "ours": 0.0}
    max_diff = 0.0
    for i, batch in enumerate(loader):
        batch = batch.to(device)
        opt.zero_grad()
        n_id, edge_index, e_id = neighbor_loader(batch.n_id)
        assoc[n_id] = torch.arange(n_id.size(0), device=device)
        order = [("pyg", ref), ("ours", ours)]
        if i % 2:
            order.reverse()
        outputs = {}
        for name, mem in order:
            start = time.perf_counter()
            outputs[name] = mem(n_id)
            seconds[name] += time.perf_counter() - start
        z, last_update = outputs["pyg"]
        max_diff = max(max_diff, float((outputs["ours"][0] - z).detach().abs().max()))
        del outputs
        z = gnn(z, last_update, edge_index, data.t[e_id].to(device),
                data.msg[e_id].to(device))
        pos = link_pred(z[assoc[batch.src]], z[assoc[batch.dst]])
        neg = link_pred(z[assoc[batch.src]], z[assoc[batch.neg_dst]])
        loss = model.criterion(pos, torch.ones_like(pos)) + \
            model.criterion(neg, torch.zeros_like(neg))
        for name, mem in order:
            start = time.perf_counter()
            mem.update_state(batch.src, batch.dst, batch.t, batch.msg)
            seconds[name] += time.perf_counter() - start
        neighbor_loader.insert(batch.src, batch.dst)
        loss.backward()
        opt.step()
        ref.detach()
        ours.detach()
        with torch.no_grad():  # same parameters for the next batch (untimed)
            for p, q in zip(ref.parameters(), ours.parameters()):
                q.copy_(p)
    return seconds, max_diff


def main(argv=None):
    args = base_parser(__doc__.splitlines()[0]).parse_args(argv)
    device, data, train_data = prepare(args)
    epoch(data, train_data[:2000], args, device)  # warm-up

    def run():
        seconds, max_diff = epoch(data, train_data, args, device)
        return seconds, f" (max |z_pyg - z_ours| = {max_diff:.2g})"

    interleaved_rounds("memory module", args.rounds, run)


if __name__ == "__main__":
    main()
