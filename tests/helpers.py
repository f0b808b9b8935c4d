"""Shared test helpers: random event streams, the library's threads."""
import threading
import time

import torch


def library_threads():
    """The live threads pyg_mspipe started (prefetch, pipeline)."""
    return [t for t in threading.enumerate() if t.name.startswith("pyg-mspipe")]


def wait_no_threads(timeout=5.0):
    """Waits up to `timeout` seconds for them to end; returns those left."""
    deadline = time.monotonic() + timeout
    while library_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return library_threads()


def random_stream(num_nodes, num_events, msg_dim, seed=0, t0=0, tie_prob=0.2,
                  burst_nodes=3):
    """A sorted random event stream with repeated nodes, equal timestamps and
    bursts (a few hot nodes that get many events per batch)."""
    g = torch.Generator().manual_seed(seed)
    hot = torch.randint(0, num_nodes, (burst_nodes,), generator=g)
    src = torch.randint(0, num_nodes, (num_events,), generator=g)
    dst = torch.randint(0, num_nodes, (num_events,), generator=g)
    burst = torch.rand(num_events, generator=g) < 0.3
    src[burst] = hot[torch.randint(0, burst_nodes, (int(burst.sum()),), generator=g)]
    steps = torch.randint(1, 5, (num_events,), generator=g)
    steps[torch.rand(num_events, generator=g) < tie_prob] = 0
    t = t0 + steps.cumsum(0)
    msg = torch.randn(num_events, msg_dim, generator=g, dtype=torch.get_default_dtype())
    return src, dst, t, msg
