"""Data-parallel training with replicated memory, on gloo with 2 and 3 CPU
processes: every replica equals the single process with the same global
batches, iteration by iteration, sequential and pipelined; a checkpoint
written by rank 0 of 2 resumes on 3."""
import pytest
import torch

from tests.distributed.common import CONFIGS, LR, check_exits, launch, reference


@pytest.fixture(scope="module")
def references():
    frozen = reference(0.0)[0]
    lr_snaps, _, final = reference(LR)
    # (the ranks' learning-rate run is pipelined at bound 2, fixed schedule:
    # its forward reads exactly as stale as this one's)
    params = reference(LR, "bound2")[1]
    return {"frozen": frozen, "params20": params, "final": final, "state": lr_snaps[-1]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # Two launches for everything (starting the processes dominates the
    # time): 2 ranks train, then checkpoint mid-epoch; 3 ranks train, then
    # resume that checkpoint.
    out = tmp_path_factory.mktemp("distributed")
    configs = ",".join(CONFIGS)
    check_exits(launch(2, "equal", out, timeout=240.0, extra=(configs, "save")))
    check_exits(launch(3, "equal", out, timeout=240.0, extra=(configs, "resume")))
    return out


def _load(runs, world_size):
    return [torch.load(runs / f"w{world_size}rank{r}.pt") for r in range(world_size)]


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_replicas_equal_one_process(runs, references, world_size, config):
    frozen = references["frozen"]
    snaps = [run[config] for run in _load(runs, world_size)]
    for rank, run in enumerate(snaps):
        assert len(run) == len(frozen)  # one commit per iteration, empty shares too
        for i, (got, ref, first) in enumerate(zip(run, frozen, snaps[0])):
            for key in ref:
                # replicas: bit-identical to each other, always
                assert torch.equal(got[key], first[key]), (rank, i, key)
                # and to the single process, at every bound
                assert torch.equal(got[key], ref[key]), (rank, i, key)


@pytest.mark.parametrize("world_size", [2, 3])
def test_parameters_after_20_steps(runs, references, world_size):
    params = references["params20"]
    for rank, run in enumerate(_load(runs, world_size)):
        assert run["lr"].keys() == params.keys()
        for name, value in params.items():
            torch.testing.assert_close(run["lr"][name], value, atol=1e-5, rtol=0,
                                       msg=f"rank {rank}: {name}")


def test_checkpoint_resumes_on_another_world_size(runs, references):
    for rank in range(3):
        got = torch.load(runs / f"resumed{rank}.pt")
        for name, value in references["final"].items():
            torch.testing.assert_close(got["params"][name], value, atol=1e-5, rtol=0,
                                       msg=f"rank {rank}: {name}")
        for key, value in references["state"].items():
            torch.testing.assert_close(got["state"][key], value, atol=1e-5, rtol=0,
                                       msg=f"rank {rank}: {key}")
