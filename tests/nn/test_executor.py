"""The seam between a memory and its executor: one call per user call,
forward's rows reused while the write clock says they are good, the
pipeline installed for an epoch only, stage hooks on every executor."""
import threading

import pytest
import torch
import torch_geometric.nn.models.tgn as pyg_tgn

import pyg_mspipe
from pyg_mspipe import TGNMemory
from pyg_mspipe.nn._executor import installed
from pyg_mspipe.pipeline import hook_stages

from ..helpers import random_stream
from ..pipeline.common import make_data, memory_step, setup

NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM = 30, 5, 8, 4


def make_pair():
    torch.manual_seed(0)
    ref = pyg_tgn.TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM,
                            pyg_tgn.IdentityMessage(MSG_DIM, MEM_DIM, TIME_DIM),
                            pyg_mspipe.LastAggregator())
    ours = TGNMemory(NUM_NODES, MSG_DIM, MEM_DIM, TIME_DIM,
                     pyg_mspipe.IdentityMessage(MSG_DIM, MEM_DIM, TIME_DIM),
                     pyg_mspipe.LastAggregator())
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def test_stage_hook_sees_one_fetch_and_one_write_per_sequential_batch():
    _, ours = make_pair()
    stages = []
    hook_stages(ours, stages.append)
    src, dst, t, msg = random_stream(NUM_NODES, 40, MSG_DIM, seed=1)
    for lo in (0, 20):
        sl = slice(lo, lo + 20)
        ours(torch.cat([src[sl], dst[sl]]).unique())
        ours.update_state(src[sl], dst[sl], t[sl], msg[sl])
    assert stages == ["fetch", "write"] * 2  # update_state reused forward's rows


def test_a_write_recomputes_only_the_rows_it_changed():
    """forward's rows stay good for the nodes whose inputs the write clock
    says are unchanged; the others are recomputed, and the result is PyG's."""
    ref, ours = make_pair()
    src, dst, t, msg = random_stream(NUM_NODES, 60, MSG_DIM, seed=2)
    for memory in (ref, ours):
        memory.update_state(src[:20], dst[:20], t[:20], msg[:20])
    n_id = torch.cat([src[40:], dst[40:]]).unique()
    ours(n_id)
    # between forward and update_state, another batch changes some nodes
    for memory in (ref, ours):
        memory.update_state(src[20:40], dst[20:40], t[20:40], msg[20:40])
    fetched = []
    hook_stages(ours, lambda stage: stage == "fetch" and fetched.append(stage))
    for memory in (ref, ours):
        memory.update_state(src[40:], dst[40:], t[40:], msg[40:])
    assert len(fetched) == 1  # the changed rows, read again once
    torch.testing.assert_close(ours.memory, ref.memory, atol=1e-6, rtol=1e-6)
    assert torch.equal(ours.last_update, ref.last_update)


def test_pipeline_is_installed_for_its_epoch_only():
    data = make_data()
    model, neighbor_loader, loader = setup(data, lr=0.0, staleness_bound=1)
    assert installed(model.memory) is None
    for batch in loader:
        assert installed(model.memory) is loader.pipeline
        memory_step(model, neighbor_loader, batch)
    assert installed(model.memory) is None
    model.memory.reset_state()
    neighbor_loader.reset_state()
    it = iter(loader)  # abandoned after one batch
    memory_step(model, neighbor_loader, next(it))
    assert installed(model.memory) is loader.pipeline
    it.close()
    assert installed(model.memory) is None


def test_no_seam_changes_while_pipelined():
    data = make_data()
    model, neighbor_loader, loader = setup(data, lr=0.0, staleness_bound=1)
    it = iter(loader)
    memory_step(model, neighbor_loader, next(it))
    with pytest.raises(RuntimeError, match="while a pipelined epoch runs"):
        model.memory.set_committer(lambda write_back, plan: None)
    with pytest.raises(RuntimeError, match="while a pipelined epoch runs"):
        model.memory.steps = model.memory.steps
    it.close()
    model.memory.steps = model.memory.steps  # fine between epochs


def test_pipelined_stages_run_on_the_worker():
    data = make_data()
    threads = {"fetch": set(), "write": set()}
    model, neighbor_loader, loader = setup(
        data, lr=0.0, staleness_bound=2, schedule="fixed",
        hook=lambda stage: threads[stage].add(threading.current_thread().name))
    for batch in loader:
        memory_step(model, neighbor_loader, batch)
    assert threads["fetch"] == {"pyg-mspipe-memory"}
    assert threads["write"] == {"pyg-mspipe-memory"}
