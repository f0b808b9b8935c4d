"""Staleness correction (refresh of the fetched rows before use): exact
refresh, s=0 unchanged, no update lost, the fixed schedule's refresh point,
the staleness it leaves, and that it actually lowers it."""
import time

import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import TemporalDataLoader
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState
from pyg_mspipe.pipeline import StalenessCorrection
from pyg_mspipe.pipeline._memory_pipeline import MemoryPipeline
from pyg_mspipe.pipeline._scheduler import StalenessScheduler
from pyg_mspipe.pipeline.correction import changed_rows, refresh_inputs

from ..helpers import random_stream, wait_no_threads
from .common import MSG_DIM, NUM_NODES, make_data, setup, train

pytestmark = pytest.mark.timeout(300)  # (a loaded 2-core CI machine)


def _state_after(model, data, batches, every=25):
    """A memory that took the first `batches` batches of `data` (sequential)."""
    memory = model.memory
    memory.train()
    memory.reset_state()
    for k in range(batches):
        sl = slice(k * every, (k + 1) * every)
        memory(torch.cat([data.src[sl], data.dst[sl]]).unique())
        memory.update_state(data.src[sl], data.dst[sl], data.t[sl], data.msg[sl])
        memory.detach()
    return memory


@pytest.mark.parametrize("aggregator", ["last", "mean"])
def test_refresh_equals_a_fresh_gather(aggregator):
    data = make_data()
    model, _, _ = setup(data, aggregator=aggregator)
    memory = _state_after(model, data, 4)
    state, kept = memory.state, memory.steps.kept_only
    n_id = torch.arange(NUM_NODES)
    clock = state.clock
    memory = _state_after(model, data, 6)  # (reset first: every version newer)
    assert changed_rows(state, n_id, clock, kept).numel() == NUM_NODES
    # from 6 batches to 8: only some rows change
    clock = state.clock
    old = update.gather(state, n_id, kept)
    for k in (6, 7):
        sl = slice(k * 25, (k + 1) * 25)
        memory(torch.cat([data.src[sl], data.dst[sl]]).unique())
        memory.update_state(data.src[sl], data.dst[sl], data.t[sl], data.msg[sl])
    rows = changed_rows(state, n_id, clock, kept)
    assert 0 < rows.numel() < NUM_NODES or not kept  # (mean: partners everywhere)
    got, count = refresh_inputs(state, old, n_id, clock, kept)
    want = update.gather(state, n_id, kept)
    assert count == rows.numel()
    for a, b in zip(got, want):
        assert torch.equal(a, b) if torch.is_tensor(a) else a == b
    # the rows not found changed were equal already
    same = torch.ones(NUM_NODES, dtype=torch.bool)
    same[rows] = False
    if kept:
        assert torch.equal(old.plain[same], want.plain[same])
    assert refresh_inputs(state, want, n_id, state.clock, kept) == (want, 0)


def test_changed_rows_sees_partners():
    """A node whose kept message's other endpoint changed must be read
    again even though its own row did not change."""
    state = MemoryState(4, 2, 1)
    n_id = torch.arange(4)
    src, dst, t, msg = (torch.tensor([0]), torch.tensor([1]), torch.tensor([5]),
                        torch.ones(1, 1))
    plan = update.plan_events(src, dst, t, msg, 4, state.store.msg.dtype)
    state.store_messages(plan.messages, plan.t_max)
    clock = state.clock
    state.write(torch.tensor([1]), torch.ones(1, 2), torch.tensor([5]))
    assert changed_rows(state, n_id, clock, True).tolist() == [0, 1]


def test_bad_arguments():
    for lag in (-1, 1.5, True):
        with pytest.raises(ValueError, match="lag"):
            StalenessCorrection(lag=lag)
    data = make_data()
    with pytest.raises(ValueError, match="staleness_bound"):
        TemporalDataLoader(data, batch_size=10, correction=True)
    with pytest.raises(TypeError, match="correction"):
        TemporalDataLoader(data, batch_size=10, correction="yes")


@pytest.mark.parametrize("aggregator", ["last", "mean"])
def test_staleness_zero_unchanged(aggregator):
    data = make_data(num_events=300)
    ref = train(data, epochs=2, aggregator=aggregator)
    got = train(data, epochs=2, aggregator=aggregator, staleness_bound=0, correction=True)
    assert got[0] == ref[0]  # every batch's loss, bit for bit
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    assert got[3].summary()["max_refreshed_staleness"] == 0
    assert not wait_no_threads()


@pytest.mark.parametrize("bound, schedule", [(1, "fixed"), (2, "fixed"), (4, "fixed"),
                                             (2, "online")])
def test_frozen_parameters_no_update_lost(bound, schedule):
    data = make_data(num_events=400)
    ref = train(data, lr=0.0)
    got = train(data, lr=0.0, staleness_bound=bound, schedule=schedule,
                correction=StalenessCorrection(lag=1))
    torch.testing.assert_close(got[1], ref[1], atol=0, rtol=0)
    assert torch.equal(got[2], ref[2])
    summary = got[3].summary()
    assert summary["max_refreshed_staleness"] <= summary["max_staleness"] <= bound
    for r in got[3].records:
        assert r.refreshed_staleness <= r.staleness


@pytest.mark.parametrize("bound, lag, aggregator", [(2, 0, "last"), (2, 1, "mean"),
                                                   (4, 2, "last")])
def test_fixed_schedule_refreshes_to_exactly_lag(bound, lag, aggregator):
    """The fetch is s stale, the refresh makes it exactly min(i, lag) stale:
    the same numbers, bit for bit, as a fixed schedule with bound lag."""
    data = make_data(num_events=300)
    ref = train(data, epochs=2, aggregator=aggregator, staleness_bound=lag, schedule="fixed")
    got = train(data, epochs=2, aggregator=aggregator, staleness_bound=bound,
                schedule="fixed", correction=StalenessCorrection(lag=lag))
    assert got[0] == ref[0]
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    stats = got[3]
    n = len(stats.records)
    assert stats.staleness() == [min(i, bound) for i in range(n)]
    assert stats.refreshed_staleness() == [min(i, lag) for i in range(n)]
    assert stats.summary()["refreshed_rows"] > 0


def test_lag_above_the_bound_acts_as_the_bound():
    data = make_data(num_events=300)
    ref = train(data, staleness_bound=1, schedule="fixed")
    got = train(data, staleness_bound=1, schedule="fixed",
                correction=StalenessCorrection(lag=3))
    assert got[0] == ref[0]
    assert got[3].summary()["max_refreshed_staleness"] == 1


def test_refresh_lowers_staleness_when_write_backs_finish_before_use(monkeypatch):
    """Online schedule with a scheduler that always fetches as early as the
    bound allows, and a slow training step: the write-backs complete between
    fetch and use; the refresh reads them, so what training reads is
    fresher than what was fetched (and the memory still loses no update)."""
    monkeypatch.setattr(StalenessScheduler, "deadline", lambda self: 0.0)
    monkeypatch.setattr(StalenessScheduler, "write_fits", lambda self, now: False)
    slow = MemoryPipeline.update_state

    def slow_update_state(self, *args, **kwargs):
        out = slow(self, *args, **kwargs)
        time.sleep(0.01)  # the backward pass of a slow model
        return out

    monkeypatch.setattr(MemoryPipeline, "update_state", slow_update_state)
    data = make_data()
    ref = train(data, lr=0.0)
    got = train(data, lr=0.0, staleness_bound=3, correction=True)
    stale = train(data, lr=0.0, staleness_bound=3)
    torch.testing.assert_close(got[1], ref[1], atol=0, rtol=0)
    summary = got[3].summary()
    assert summary["mean_staleness"] > 1.0  # fetched early
    assert summary["mean_refreshed_staleness"] < summary["mean_staleness"] - 0.5
    assert summary["max_refreshed_staleness"] <= 3
    assert summary["refreshed_rows"] > 0
    # reads refreshed to staleness 0 are the sequential reads: same losses
    fresh = [k for k, r in enumerate(got[3].records)
             if r.refreshed_staleness == 0 and r.staleness > 0]
    assert fresh
    for k in fresh:
        assert got[0][k] == pytest.approx(ref[0][k], abs=1e-5)
    assert any(stale[0][k] != pytest.approx(ref[0][k], abs=1e-5) for k in fresh)


def test_host_storage_and_dense_stream():
    """Few nodes, many events per node per batch, state kept on the host."""
    src, dst, t, msg = random_stream(12, 300, MSG_DIM, seed=3)
    data = TemporalData(src=src, dst=dst, t=t, msg=msg)
    ref = train(data, lr=0.0)
    got = train(data, lr=0.0, staleness_bound=2, schedule="fixed",
                correction=StalenessCorrection(lag=0), memory_kwargs={"storage": "cpu"})
    torch.testing.assert_close(got[1], ref[1], atol=0, rtol=0)
    assert got[3].summary()["max_refreshed_staleness"] == 0


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    """Fixed schedule, bound 3, refresh lag 1: a run killed with SIGKILL and
    resumed from its last checkpoint ends bit-identical to a run that never
    checkpointed mid-epoch (the refresh points do not depend on timing)."""
    from ..test_checkpoint import same_result, worker
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir()
    run.mkdir()
    opts = ["--prefetch", "2", "--staleness", "3", "--refresh-lag", "1", "--epochs", "1"]
    worker(ref, *opts, "--every", "1000")
    worker(run, *opts, "--every", "4", kill_at=17)
    assert (run / "ckpt.pt").exists() and not (run / "result.pt").exists()
    worker(run, *opts, "--every", "4", "--resume")
    same_result(ref, run)
