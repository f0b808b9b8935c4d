"""JODIE, DyRep and APAN through the pipelined loader with no extra code:
s=0 bit-identical to the sequential loop, frozen parameters lose no update
at s in {1, 2, 4} (APAN's mailbox and DyRep's attention included), bad
input rejected with no state change."""
import gc

import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.engine.models import build_model
from pyg_mspipe.engine.training import train_epoch

from ..helpers import random_stream, wait_no_threads

NUM_NODES, DIM, MSG_DIM, BATCH = 40, 8, 4, 20
MODELS = ["jodie", "dyrep", "apan"]


def make_data(num_events=240, seed=0):
    src, dst, t, msg = random_stream(NUM_NODES, num_events, MSG_DIM, seed=seed)
    return TemporalData(src=src, dst=dst, t=t, msg=msg)


def setup(name, data, lr=1e-2, seed=0, **loader_kwargs):
    gc.collect()
    torch.manual_seed(seed)
    model = build_model(name, NUM_NODES, MSG_DIM, memory_dim=DIM, time_dim=DIM,
                        embedding_dim=DIM, lr=lr, mailbox_size=3, num_neighbors=3)
    nl = LastNeighborLoader(NUM_NODES, size=4) if model.needs_neighbors else None
    if loader_kwargs:
        loader_kwargs.setdefault("prefetch", 2)
        loader_kwargs.update(memory=model.memory, neighbor_loader=nl)
    loader = TemporalDataLoader(data, batch_size=BATCH, neg_sampling_ratio=1.0,
                                generator=torch.Generator().manual_seed(seed + 1),
                                **loader_kwargs)
    return model, nl, loader


def train(name, data, epochs=1, **kwargs):
    model, nl, loader = setup(name, data, **kwargs)
    losses = []
    for _ in range(epochs):
        train_epoch(model, loader, nl, data, losses=losses)
    return losses, model


def same_state(a, b):
    assert torch.equal(a.memory.memory, b.memory.memory)
    assert torch.equal(a.memory.last_update, b.memory.last_update)
    sa, sb = a.memory.state_dict(), b.memory.state_dict()
    extra_a, extra_b = sa["msg_store._extra_state"], sb["msg_store._extra_state"]
    for key, value in extra_a.items():
        if torch.is_tensor(value):
            assert torch.equal(value, extra_b[key]), key


@pytest.mark.parametrize("name", MODELS)
def test_staleness_zero_equals_sequential(name):
    data = make_data()
    ref_losses, ref = train(name, data, epochs=2)
    losses, got = train(name, data, epochs=2, staleness_bound=0)
    assert losses == ref_losses
    same_state(got, ref)
    for p, q in zip(got.memory.parameters(), ref.memory.parameters()):
        assert torch.equal(p, q)
    assert not wait_no_threads()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bound", [1, 2, 4])
def test_frozen_parameters_no_update_lost(name, bound):
    data = make_data(seed=1)
    _, ref = train(name, data, lr=0.0)
    _, got = train(name, data, lr=0.0, staleness_bound=bound, schedule="fixed")
    same_state(got, ref)
    assert not wait_no_threads()


@pytest.mark.parametrize("bound", [1, 2, 4])
def test_dyrep_messages_do_not_depend_on_stale_reads(bound):
    # DyRep's messages carry an attention over the neighbourhood's memory:
    # the memory computes it when the write-back is applied, from the
    # committed memory. So with frozen parameters the pipelined run stores
    # the sequential run's very messages though its reads were stale.
    data = make_data(seed=2)
    _, ref = train("dyrep", data, lr=0.0)
    with torch.no_grad():  # the attention is real (not zero)
        assert all(bool(p.abs().sum() > 0) for p in ref.memory.structural.parameters())
    model, nl, loader = setup("dyrep", data, lr=0.0, staleness_bound=bound, schedule="fixed")
    train_epoch(model, loader, nl, data)
    assert loader.stats.summary()["max_staleness"] == bound  # reads really were stale
    same_state(model, ref)
    assert not wait_no_threads()


@pytest.mark.parametrize("name", MODELS)
def test_bad_events_rejected_without_state_change(name):
    data = make_data()
    model, nl, loader = setup(name, data, lr=0.0, staleness_bound=1)
    it = iter(loader)
    batch = next(it)
    n_id = nl(batch.n_id)[0] if nl is not None else batch.n_id
    model.memory(n_id)
    before = {k: v.clone() for k, v in model.memory.state_dict().items() if torch.is_tensor(v)}
    bad_t = batch.t.flip(0) if bool((batch.t.diff() > 0).any()) else batch.t - 10 ** 6
    with pytest.raises(ValueError):
        model.memory.update_state(batch.src, batch.dst, bad_t, batch.msg)
    with pytest.raises(ValueError):
        model.memory.update_state(batch.src, batch.dst + NUM_NODES, batch.t, batch.msg)
    after = model.memory.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    for _ in it:  # the epoch goes on
        pass
    assert not wait_no_threads()
