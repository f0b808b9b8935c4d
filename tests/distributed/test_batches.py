"""A rank's shares: contiguous, in rank order, partitioning every global
batch and its negatives exactly as one process draws them."""
import pytest
import torch

from pyg_mspipe import TemporalDataLoader
from pyg_mspipe.distributed import ShareLoader
from pyg_mspipe.distributed._batches import ShareBatches, share_bounds
from tests.distributed.common import make_stream


@pytest.mark.parametrize("num,world", [(10, 3), (1, 2), (0, 3), (7, 7), (5, 8)])
def test_share_bounds_partition(num, world):
    bounds = [share_bounds(num, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == num
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("ratio, candidates", [(1.0, False), (2.5, False), (1.0, True)])
def test_shares_concatenate_to_the_global_batches(world, ratio, candidates):
    data = make_stream()
    extra = {"neg_dst_candidates": data.dst.unique()[::2]} if candidates else {}
    single = list(TemporalDataLoader(data, 10, ratio, prefetch=0,
                                     generator=torch.Generator().manual_seed(3), **extra))
    ranks = [list(ShareLoader(data, 10, ratio, rank=r, world_size=world, prefetch=0,
                              generator=torch.Generator().manual_seed(3), **extra))
             for r in range(world)]
    if candidates:
        assert torch.isin(torch.cat([b.neg_dst for b in single]),
                          extra["neg_dst_candidates"]).all()
    assert all(len(shares) == len(single) for shares in ranks)
    for i, full in enumerate(single):
        shares = [shares[i] for shares in ranks]
        for key in ("src", "dst", "t", "msg", "neg_dst"):
            assert torch.equal(torch.cat([s[key] for s in shares]), full[key]), (i, key)
        for share in shares:
            assert torch.equal(share.global_src, full.src)
            assert torch.equal(share.global_dst, full.dst)
            assert torch.equal(share.n_id, torch.cat([share.src, share.dst,
                                                       share.neg_dst]).unique())
    assert any(s.num_events == 0 for s in (shares[-1] for shares in ranks))  # empty share


def test_insert_events_are_the_global_batch():
    batches = ShareBatches(make_stream(), 10, 1.0, rank=1, world_size=3)
    batch = batches.make(0)
    src, dst = batches.insert_events(batch)
    assert src.numel() == 10 and batch.num_events == 3
    assert torch.equal(src[3:6], batch.src) and torch.equal(dst[3:6], batch.dst)


def test_bad_rank_and_generator():
    with pytest.raises(ValueError, match="'rank'"):
        ShareBatches(make_stream(), 10, 1.0, rank=3, world_size=3)
    with pytest.raises(TypeError, match="generator"):
        ShareLoader(make_stream(), 10, 1.0, rank=0, world_size=2, generator=None)
