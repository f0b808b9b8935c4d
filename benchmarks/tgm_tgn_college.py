"""TGM's TGN link-prediction example (``tgm-team/tgm``,
``examples/linkproppred/tgn.py`` at tag ``v0.1.0b1``, the release ``tgm-lib``
0.1.0b1 on PyPI) on CollegeMsg.

Its model, hooks and ``train()`` are the example's, line for line; what
differs is what the example cannot do offline: the data (CollegeMsg from
this project's bundled file instead of ``DGData.from_tgb``), the split (this
project's chronological 70/15/15 by events, as ``pyg-mspipe train``, passed
to TGM as a ``TemporalSplit``: TGM's ``TemporalRatioSplit`` splits the time
span, not the events) and the evaluation: instead of TGB's one-vs-many MRR,
the AP of each batch of 200 events against one random negative per event
drawn by this project's DyGLib ``random`` sampler (``--negatives random`` of
``pyg-mspipe train``, same seed), averaged over batches, the figure
``pyg-mspipe train`` reports.

Runs in a virtual environment with ``tgm-lib`` (and this project on its
path), e.g. ``/work/venv-tgm`` of docs/benchmarks.md. Prints one line per
epoch: ``epoch E train_seconds S events_per_second R`` and, with
``--eval``, the validation and test AP.

    python benchmarks/tgm_tgn_college.py --epochs 2
    python benchmarks/tgm_tgn_college.py --epochs 10 --eval --seed 0
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from tgm import DGraph
from tgm.constants import PADDED_NODE_ID
from tgm.data import DGData, DGDataLoader
from tgm.data.split import TemporalSplit
from tgm.hooks import (
    DeduplicationHook,
    HookManager,
    NegativeEdgeSamplerHook,
    RecencyNeighborHook,
    StatelessHook,
)
from tgm.nn import LinkPredictor, TGNMemory
from tgm.nn.encoder.tgn import GraphAttentionEmbedding, IdentityMessage, LastAggregator
from tgm.util.seed import seed_everything

from pyg_mspipe.datasets import load_dataset
from pyg_mspipe.engine.evaluation import EvalProtocol
from pyg_mspipe.engine.splits import transductive_split


class SamplerNegatives(StatelessHook):
    """One negative destination per event from a pyg_mspipe negative sampler
    (the evaluation's, as ``pyg-mspipe train --negatives random`` draws)."""

    requires = {'edge_src', 'edge_dst', 'edge_time'}
    produces = {'neg', 'neg_time'}

    def __init__(self, sampler):
        self.sampler = sampler

    def __call__(self, dg, batch):
        src, dst, t = (x.long() for x in (batch.edge_src, batch.edge_dst, batch.edge_time))
        _, neg_dst = self.sampler.sample(src, dst, t, 1)
        batch.neg = neg_dst.view(-1).to(batch.edge_dst.dtype)
        batch.neg_time = batch.edge_time.clone()
        return batch


def neighbourhood(batch):
    # The example's neighbour edge index, times and features (verbatim).
    nbr_nodes = batch.nbr_nids[0].flatten()
    nbr_mask = nbr_nodes != PADDED_NODE_ID
    num_nbrs = len(nbr_nodes) // (len(batch.edge_src) + len(batch.edge_dst) + len(batch.neg))
    src_nodes = torch.cat([batch.edge_src.repeat_interleave(num_nbrs),
                           batch.edge_dst.repeat_interleave(num_nbrs),
                           batch.neg.repeat_interleave(num_nbrs)])
    nbr_edge_index = torch.stack([batch.global_to_local(src_nodes[nbr_mask]),
                                  batch.global_to_local(nbr_nodes[nbr_mask])]).to(
                                      dtype=torch.int64)
    nbr_edge_time = batch.nbr_edge_time[0].flatten()[nbr_mask]
    nbr_edge_x = batch.nbr_edge_x[0].flatten(0, -2).float()[nbr_mask]
    return nbr_edge_index, nbr_edge_time, nbr_edge_x


def train(loader, memory, encoder, decoder, opt):
    # The example's train() (without its tqdm and logging decorators).
    memory.train()
    encoder.train()
    decoder.train()
    total_loss = 0
    memory.reset_state()
    for batch in loader:
        opt.zero_grad()
        nbr_edge_index, nbr_edge_time, nbr_edge_x = neighbourhood(batch)
        z, last_update = memory(batch.unique_nids)
        z = encoder(z, last_update, nbr_edge_index, nbr_edge_time, nbr_edge_x)
        inv_src = batch.global_to_local(batch.edge_src)
        inv_dst = batch.global_to_local(batch.edge_dst)
        inv_neg = batch.global_to_local(batch.neg)
        pos_out = decoder(z[inv_src], z[inv_dst])
        neg_out = decoder(z[inv_src], z[inv_neg])
        loss = F.binary_cross_entropy_with_logits(pos_out, torch.ones_like(pos_out))
        loss += F.binary_cross_entropy_with_logits(neg_out, torch.zeros_like(neg_out))
        memory.update_state(batch.edge_src, batch.edge_dst, batch.edge_time,
                            batch.edge_x.float())
        loss.backward()
        opt.step()
        total_loss += float(loss)
        memory.detach()
    return total_loss


@torch.no_grad()
def evaluate(loader, memory, encoder, decoder):
    # The example's eval(), scoring each batch's positives and its one
    # random negative per event by AP instead of TGB's MRR.
    memory.eval()
    encoder.eval()
    decoder.eval()
    aps = []
    for batch in loader:
        nbr_edge_index, nbr_edge_time, nbr_edge_x = neighbourhood(batch)
        z, last_update = memory(batch.unique_nids)
        z = encoder(z, last_update, nbr_edge_index, nbr_edge_time, nbr_edge_x)
        inv_src = batch.global_to_local(batch.edge_src)
        pos = decoder(z[inv_src], z[batch.global_to_local(batch.edge_dst)]).sigmoid()
        neg = decoder(z[inv_src], z[batch.global_to_local(batch.neg)]).sigmoid()
        y = np.concatenate([np.ones(pos.numel()), np.zeros(neg.numel())])
        aps.append(average_precision_score(y, torch.cat([pos, neg]).view(-1).numpy()))
        memory.update_state(batch.edge_src, batch.edge_dst, batch.edge_time,
                            batch.edge_x.float())
    return float(np.mean(aps))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--seed', type=int, default=1337)  # the example's
    parser.add_argument('--bsize', type=int, default=200)
    parser.add_argument('--dim', type=int, default=100,
                        help='memory, time and embedding size (the example: 100)')
    parser.add_argument('--edge-features', default='random', choices=['random', 'zeros'],
                        help="CollegeMsg's edge features as pyg-mspipe loads them")
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--eval', action='store_true', help='validation and test AP')
    parser.add_argument('--json', default=None, help='write the epochs there')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    seed_everything(args.seed)
    data = load_dataset('college', features=args.edge_features)
    split = transductive_split(data, 0.15, 0.15)
    full = DGData.from_raw(edge_time=data.t.long(),
                           edge_index=torch.stack([data.src, data.dst], 1).int(),
                           edge_x=data.msg.float())
    val_time, test_time = int(split.val.t[0]), int(split.test.t[0])
    train_data, val_data, test_data = full.split(TemporalSplit(val_time, test_time))
    train_dg, val_dg, test_dg = (DGraph(d) for d in (train_data, val_data, test_data))
    assert (train_dg.num_edge_events, val_dg.num_edge_events, test_dg.num_edge_events) == \
        (split.train.num_events, split.val.num_events, split.test.num_events)
    num_nodes = int(max(data.src.max(), data.dst.max())) + 1

    nbr_hook = RecencyNeighborHook(num_nbrs=[10], num_nodes=num_nodes,
                                   seed_nodes_keys=['edge_src', 'edge_dst', 'neg'],
                                   seed_times_keys=['edge_time', 'edge_time', 'neg_time'])
    hm = HookManager(keys=['train', 'val', 'test'])
    dst = train_dg.edge_dst  # the example's recipe: TGM's training negatives
    hm.register('train', NegativeEdgeSamplerHook(low=int(dst.min()), high=int(dst.max())))
    protocol = EvalProtocol('transductive', negatives='random', seed=0)
    samplers = {part: protocol.sampler(split, part) for part in ('val', 'test')}
    for part, sampler in samplers.items():
        hm.register(part, SamplerNegatives(sampler))
    hm.register_shared(nbr_hook)
    hm.register_shared(DeduplicationHook())
    train_loader = DGDataLoader(train_dg, args.bsize, hook_manager=hm)
    val_loader = DGDataLoader(val_dg, args.bsize, hook_manager=hm)
    test_loader = DGDataLoader(test_dg, args.bsize, hook_manager=hm)

    edge_dim = test_dg.edge_x_dim
    memory = TGNMemory(num_nodes, edge_dim, args.dim, args.dim,
                       message_module=IdentityMessage(edge_dim, args.dim, args.dim),
                       aggregator_module=LastAggregator())
    encoder = GraphAttentionEmbedding(in_channels=args.dim, out_channels=args.dim,
                                      msg_dim=edge_dim, time_enc=memory.time_enc)
    decoder = LinkPredictor(node_dim=args.dim, hidden_dim=args.dim)
    opt = torch.optim.Adam(set(memory.parameters()) | set(encoder.parameters())
                           | set(decoder.parameters()), lr=1e-4)

    print(f'tgm TGN CollegeMsg: train {train_dg.num_edge_events} val {val_dg.num_edge_events} '
          f'test {test_dg.num_edge_events} events, threads {torch.get_num_threads()}', flush=True)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        with hm.activate('train'):
            loss = train(train_loader, memory, encoder, decoder, opt)
        seconds = time.perf_counter() - start
        record = dict(epoch=epoch, loss=loss, train_seconds=seconds,
                      events_per_second=train_dg.num_edge_events / seconds)
        line = (f'epoch {epoch} train_seconds {seconds:.3f} '
                f'events_per_second {record["events_per_second"]:.1f} loss {loss:.4f}')
        if args.eval:
            for part, loader in (('val', val_loader), ('test', test_loader)):
                samplers[part].reset()
                with hm.activate(part):
                    record[f'{part}_ap'] = evaluate(loader, memory, encoder, decoder)
            line += f' val_ap {record["val_ap"]:.4f} test_ap {record["test_ap"]:.4f}'
        print(line, flush=True)
        epochs.append(record)
        if epoch < args.epochs:
            hm.reset_state()
    if args.eval:
        best = max(epochs, key=lambda r: r['val_ap'])
        print(f'best val epoch {best["epoch"]} (val ap {best["val_ap"]:.4f}): '
              f'test ap {best["test_ap"]:.4f}', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': vars(args), 'epochs': epochs}, f, indent=2)


if __name__ == '__main__':
    main()
