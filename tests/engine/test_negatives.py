"""DyGLib's three negative strategies against their definitions written out
with Python sets (DyGLib's utils/utils.py NegativeEdgeSampler)."""
from collections import Counter

import pytest
import torch
from torch_geometric.data import TemporalData

from pyg_mspipe.engine.negatives import NegativeSampler


def random_stream(seed, num_events=300, num_nodes=25, num_times=60):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, num_times, (num_events,), generator=g).sort().values
    return TemporalData(src=torch.randint(0, num_nodes, (num_events,), generator=g),
                        dst=torch.randint(num_nodes, 2 * num_nodes, (num_events,), generator=g),
                        t=t)


def edges_between(data, start, end):
    return {(u, v) for u, v, t in zip(data.src.tolist(), data.dst.tolist(), data.t.tolist())
            if start <= t <= end}


def definition(data, strategy, batch, last_observed):
    r"""DyGLib's candidate sets for one batch: the preferred edges (historical
    or inductive, minus the batch window) and the fill-in pool."""
    start, end = int(batch.t[0]), int(batch.t[-1])
    earliest = int(data.t.min())
    preferred = edges_between(data, earliest, start) - edges_between(data, start, end)
    if strategy == "inductive":
        preferred -= edges_between(data, earliest, last_observed)
    possible = {(u, v) for u in set(data.src.tolist()) for v in set(data.dst.tolist())}
    batch_edges = set(zip(batch.src.tolist(), batch.dst.tolist()))
    return preferred, possible - batch_edges


def check_batch(data, strategy, batch, k, last_observed, sampler):
    preferred, pool = definition(data, strategy, batch, last_observed)
    neg = sampler.sample(batch.src, batch.dst, batch.t, k)
    assert neg.src.shape == neg.dst.shape == (batch.num_events, k)
    drawn = Counter(zip(neg.src.view(-1).tolist(), neg.dst.view(-1).tolist()))
    size = batch.num_events * k
    if len(preferred) >= size:
        # Without replacement among the preferred edges.
        assert set(drawn) <= preferred and max(drawn.values()) == 1
        return "preferred"
    # All preferred edges, then the rest from the pool (distinct unless the
    # pool is smaller than what is missing).
    assert preferred <= set(drawn)
    rest = drawn - Counter(preferred)
    assert set(rest) <= pool and sum(rest.values()) == size - len(preferred)
    if len(pool) >= size - len(preferred):
        assert max(rest.values()) == 1
    return "filled"


@pytest.mark.parametrize("strategy", ["historical", "inductive"])
@pytest.mark.parametrize("seed", range(3))
def test_historical_and_inductive_sets(strategy, seed):
    data = random_stream(seed)
    last_observed = int(data.t[150])
    sampler = NegativeSampler(strategy, data, last_observed_time=last_observed, seed=seed)
    kinds = set()
    for start in range(0, data.num_events, 20):
        batch = data[start:start + 20]
        for k in (1, 4):
            kinds.add(check_batch(data, strategy, batch, k, last_observed, sampler))
    assert kinds == {"preferred", "filled"}  # both branches were exercised


def test_pool_smaller_than_needed_draws_with_replacement():
    # 2 sources x 2 destinations: 4 possible edges, 1 in the batch, 3 left.
    data = TemporalData(src=torch.tensor([0, 1, 0]), dst=torch.tensor([2, 3, 3]),
                        t=torch.tensor([5, 6, 7]))
    sampler = NegativeSampler("historical", data, seed=0)
    batch = data[:1]
    neg = sampler.sample(batch.src, batch.dst, batch.t, num_negatives=8)
    drawn = set(zip(neg.src.view(-1).tolist(), neg.dst.view(-1).tolist()))
    assert drawn <= {(0, 3), (1, 2), (1, 3)} and neg.dst.numel() == 8


def frequencies(sampler, batch, k, rounds):
    counts = Counter()
    for _ in range(rounds):
        neg = sampler.sample(batch.src, batch.dst, batch.t, k)
        counts.update(zip(neg.src.view(-1).tolist(), neg.dst.view(-1).tolist()))
    return counts


def assert_uniform(counts, support, draws_per_item):
    assert set(counts) == support
    p = draws_per_item
    values = torch.tensor([counts[e] for e in support], dtype=torch.float)
    assert (values - p).abs().max() < 5 * p ** 0.5 + 1


@pytest.mark.parametrize("first, k", [(1500, 5), (30, 2)])
def test_historical_uniform_without_replacement(first, k):
    # Many distinct historical edges, few asked for (the rejection path), and
    # a few more than asked for (the enumerated path).
    g = torch.Generator().manual_seed(3)
    n = 2000
    data = TemporalData(src=torch.randint(0, 300, (n,), generator=g),
                        dst=torch.randint(300, 600, (n,), generator=g),
                        t=torch.arange(n))
    batch = data[first:first + 10]
    preferred, _ = definition(data, "historical", batch, None)
    assert len(preferred) >= 10 * k
    sampler = NegativeSampler("historical", data, seed=1)
    rounds = 300
    counts = frequencies(sampler, batch, k, rounds)
    assert_uniform(counts, preferred, rounds * 10 * k / len(preferred))


def test_fill_in_uniform_over_pool():
    # No history before the first batch: every negative is a fill-in edge.
    data = random_stream(1, num_events=60, num_nodes=6, num_times=60)
    batch = data[data.t == data.t.min()]
    preferred, pool = definition(data, "historical", batch, None)
    assert not preferred
    sampler = NegativeSampler("historical", data, seed=2)
    rounds = 400
    counts = frequencies(sampler, batch, 3, rounds)
    assert_uniform(counts, pool, rounds * 3 * batch.num_events / len(pool))


def test_random_strategy():
    data = random_stream(0)
    sampler = NegativeSampler("random", data, seed=0)
    batch = data[:50]
    neg = sampler.sample(batch.src, batch.dst, batch.t, 3)
    assert torch.equal(neg.src, batch.src.view(-1, 1).expand(-1, 3))
    counts = Counter()
    rounds = 400
    for _ in range(rounds):
        counts.update(sampler.sample(batch.src, batch.dst, batch.t, 3).dst.view(-1).tolist())
    destinations = set(data.dst.tolist())
    assert_uniform(counts, destinations, rounds * 150 / len(destinations))


@pytest.mark.parametrize("strategy", ["random", "historical", "inductive"])
def test_seeded_and_reset(strategy):
    data = random_stream(0)
    batch = data[200:240]

    def run(sampler):
        return [sampler.sample(batch.src, batch.dst, batch.t, 2) for _ in range(3)]

    a = NegativeSampler(strategy, data, last_observed_time=int(data.t[100]), seed=5)
    b = NegativeSampler(strategy, data, last_observed_time=int(data.t[100]), seed=5)
    first = run(a)
    a.reset()
    for x, y, z in zip(first, run(a), run(b)):
        assert torch.equal(x.dst, y.dst) and torch.equal(x.dst, z.dst)
        assert torch.equal(x.src, y.src)


def test_bad_arguments():
    data = random_stream(0)
    with pytest.raises(ValueError, match="strategy"):
        NegativeSampler("hard", data)
    with pytest.raises(ValueError, match="last_observed_time"):
        NegativeSampler("inductive", data)
    sampler = NegativeSampler("historical", data)
    with pytest.raises(ValueError, match="num_negatives"):
        sampler.sample(data.src[:3], data.dst[:3], data.t[:3], 0)
    with pytest.raises(ValueError, match="same length"):
        sampler.sample(data.src[:3], data.dst[:2], data.t[:3])
