"""Bad input gets a clear error naming the problem, and changes no state."""
import copy

import pytest
import torch

from pyg_mspipe import IdentityMessage, LastAggregator, TGNMemory

from .helpers import random_stream

N, D = 20, 3


def memory_with_state():
    torch.manual_seed(0)
    mem = TGNMemory(N, D, 4, 4, IdentityMessage(D, 4, 4), LastAggregator())
    src, dst, t, msg = random_stream(N, 30, D, seed=1)
    mem.update_state(src, dst, t, msg)
    return mem, int(t.max())


def snapshot(mem):
    return copy.deepcopy({k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v)
                          for k, v in mem.state_dict().items()})


def assert_unchanged(before, mem):
    after = mem.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        if torch.is_tensor(v):
            assert torch.equal(v, after[k]), k
        else:
            for kk, vv in v.items():
                assert (vv == after[k][kk]) if not torch.is_tensor(vv) else torch.equal(
                    vv, after[k][kk]), (k, kk)


def batch(t0, size=4, **override):
    b = dict(src=torch.tensor([0, 1, 2, 3])[:size], dst=torch.tensor([4, 5, 6, 7])[:size],
             t=torch.arange(t0, t0 + size), raw_msg=torch.randn(size, D))
    b.update(override)
    return b


BAD_UPDATES = {
    "src out of range": (dict(src=torch.tensor([0, 1, 2, N])), ValueError, "outside"),
    "negative dst": (dict(dst=torch.tensor([0, -1, 2, 3])), ValueError, "'dst'"),
    "float src": (dict(src=torch.tensor([0.0, 1.0, 2.0, 3.0])), TypeError, "'src'"),
    "int raw_msg": (dict(raw_msg=torch.ones(4, D, dtype=torch.long)), TypeError, "raw_msg"),
    "raw_msg dim": (dict(raw_msg=torch.randn(4, D + 1)), ValueError, "raw_msg_dim"),
    "length mismatch": (dict(dst=torch.tensor([4, 5, 6])), ValueError, "same length"),
    "2-D t": (dict(t=torch.zeros(4, 1, dtype=torch.long)), ValueError, "'t'"),
    "NaN raw_msg": (dict(raw_msg=torch.tensor([[0.0] * D, [float("nan")] * D,
                                              [0.0] * D, [0.0] * D])), ValueError, "NaN"),
    "inf raw_msg": (dict(raw_msg=torch.full((4, D), float("inf"))), ValueError, "NaN or inf"),
    "unsorted t": ("unsorted", ValueError, "not sorted"),
    "t back in time": ("back", ValueError, "back in time"),
    "empty batch": ("empty", ValueError, "empty batch"),
    "not a tensor": (dict(src=[0, 1, 2, 3]), TypeError, "torch.Tensor"),
}


@pytest.mark.parametrize("case", list(BAD_UPDATES))
@pytest.mark.parametrize("training", [True, False])
def test_bad_update_rejected_state_unchanged(case, training):
    mem, t_max = memory_with_state()
    mem.train(training)
    override, exc, match = BAD_UPDATES[case]
    if override == "unsorted":
        kwargs = batch(t_max + 1, t=torch.tensor([t_max + 3, t_max + 1, t_max + 2, t_max + 4]))
    elif override == "back":
        kwargs = batch(t_max - 5)
    elif override == "empty":
        kwargs = batch(t_max, size=0)
    else:
        kwargs = batch(t_max + 1, **override)
    before = snapshot(mem)
    with pytest.raises(exc, match=match):
        mem.update_state(**kwargs)
    assert_unchanged(before, mem)
    mem.update_state(**batch(t_max + 1))  # still usable afterwards


@pytest.mark.parametrize("n_id, exc, match", [
    (torch.tensor([0, N]), ValueError, "outside"),
    (torch.tensor([-1]), ValueError, "outside"),
    (torch.tensor([0.0, 1.0]), TypeError, "integer"),
    (torch.tensor([[0, 1]]), ValueError, "one-dimensional"),
])
def test_bad_forward_rejected(n_id, exc, match):
    mem, _ = memory_with_state()
    before = snapshot(mem)
    with pytest.raises(exc, match=match):
        mem(n_id)
    assert_unchanged(before, mem)


def test_equal_timestamps_across_batches_are_fine():
    mem, t_max = memory_with_state()
    mem.update_state(**batch(t_max))


def test_validate_false_skips_checks():
    torch.manual_seed(0)
    mem = TGNMemory(N, D, 4, 4, IdentityMessage(D, 4, 4), LastAggregator(), validate=False)
    mem.update_state(**batch(10))
    mem.update_state(**batch(0))  # back in time: not checked


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_nodes=0), "num_nodes"),
    (dict(raw_msg_dim=-1), "raw_msg_dim"),
    (dict(memory_dim=2.5), "memory_dim"),
])
def test_bad_constructor_arguments(kwargs, match):
    args = dict(num_nodes=N, raw_msg_dim=D, memory_dim=4, time_dim=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TGNMemory(**args, message_module=IdentityMessage(D, 4, 4),
                  aggregator_module=LastAggregator())


def test_huge_but_finite_messages_are_accepted():
    mem, t_max = memory_with_state()
    mem.update_state(**batch(t_max + 1, raw_msg=torch.full((4, D), 3e38)))


def test_device_mismatch_rejected():
    mem, t_max = memory_with_state()
    meta = torch.empty(3, dtype=torch.long, device="meta")
    with pytest.raises(ValueError, match="is on meta but the module is on cpu"):
        mem(meta)
    before = snapshot(mem)
    with pytest.raises(ValueError, match="is on meta"):
        mem.update_state(**batch(t_max + 1, src=torch.empty(4, dtype=torch.long,
                                                             device="meta")))
    assert_unchanged(before, mem)
