r"""MSPipe's similarity-based staleness mitigation, with the similarity index
built from the memory itself."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StalenessMitigation"]


def similar_nodes(memory: Tensor, k: int, chunk_size: int = 2048) -> Tensor:
    r"""For every node, the :obj:`k` other nodes whose memory vectors have
    the largest cosine similarity with its own, :obj:`[num_nodes, k]`.
    Computed in row chunks of :obj:`chunk_size` (memory
    :math:`O(\text{chunk} \cdot N)`)."""
    num = memory.size(0)
    k = min(k, num - 1)
    unit = F.normalize(memory.float(), dim=-1)
    out = torch.empty(num, max(k, 0), dtype=torch.long, device=memory.device)
    if k <= 0:
        return out
    for start in range(0, num, chunk_size):
        rows = unit[start:start + chunk_size]
        sim = rows @ unit.t()
        local = torch.arange(rows.size(0), device=memory.device)
        sim[local, local + start] = -float("inf")  # never a node itself
        out[start:start + rows.size(0)] = sim.topk(k, dim=-1).indices
    return out


class StalenessMitigation:
    r"""Corrects the memory of nodes that have not been updated for long
    (MSPipe, Sec. 4.3), on each memory fetch of the pipeline.

    For the fetched nodes, :math:`\Delta t_v = t - \text{last\_update}_v`
    (:math:`t` the batch's latest event time). Nodes with :math:`\Delta t_v > 0`
    at or above the :obj:`quantile` of the batch are *stale* (at, not only
    above: the stalest nodes often tie, e.g. all never-updated ones); for each, its
    :obj:`k` most similar nodes :math:`u` (cosine similarity of memory
    vectors) with a fresher memory (:math:`\text{last\_update}_u >
    \text{last\_update}_v`) give

    .. math::
        m_v \leftarrow \lambda m_v + (1 - \lambda) \frac{1}{|U|} \sum_{u \in U} m_u.

    The similarity index is built by the library from the memory vectors,
    refreshed every :obj:`refresh_every` fetches. The whole step is
    vectorised. The correction changes only what training reads: the
    pipeline's write-back never stores corrected rows (it recomputes them).

    Measured (docs/staleness.md): the rows a stale read gets wrong are the
    recently updated ones (small :math:`\Delta t`); on CollegeMsg and
    Wikipedia every row this rule picks is a never-updated node (the largest
    :math:`\Delta t` ties among them) and does not lower the error of the
    read. :class:`~pyg_mspipe.pipeline.StalenessCorrection` does.

    Args:
        lam (float, optional): Weight :math:`\lambda` of the node's own memory.
            (default: :obj:`0.9`)
        k (int, optional): Similar nodes considered. (default: :obj:`10`)
        quantile (float, optional): Nodes above this quantile of
            :math:`\Delta t` are corrected. (default: :obj:`0.99`)
        refresh_every (int, optional): Fetches between rebuilds of the
            similarity index. (default: :obj:`200`)
    """

    def __init__(self, lam: float = 0.9, k: int = 10, quantile: float = 0.99,
                 refresh_every: int = 200):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"'lam' must be in [0, 1] (got {lam})")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"'k' must be a positive int (got {k!r})")
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"'quantile' must be in [0, 1] (got {quantile})")
        if not isinstance(refresh_every, int) or refresh_every < 1:
            raise ValueError(f"'refresh_every' must be a positive int (got {refresh_every!r})")
        self.lam = lam
        self.k = k
        self.quantile = quantile
        self.refresh_every = refresh_every
        self.neighbors: Tensor | None = None
        self._fetches = 0
        self.corrected = 0  # nodes corrected so far

    def reset(self):
        r"""Forgets the similarity index (rebuilt at the next fetch)."""
        self.neighbors = None
        self._fetches = 0

    def state_dict(self) -> dict:
        r"""The similarity index and the fetch counter (for exact resume)."""
        return {"neighbors": None if self.neighbors is None else self.neighbors.cpu(),
                "fetches": self._fetches, "corrected": self.corrected}

    def load_state_dict(self, state: dict):
        neighbors = state["neighbors"]
        self.neighbors = neighbors
        self._fetches = int(state["fetches"])
        self.corrected = int(state["corrected"])

    def __call__(self, h: Tensor, n_id: Tensor, memory: Tensor, last_update: Tensor,
                 t_now: Tensor) -> Tensor:
        r"""Corrects the rows :obj:`h` (memory of the nodes :obj:`n_id`) in
        place from the state :obj:`memory`, :obj:`last_update`. Returns the
        mask of corrected rows."""
        if self.neighbors is None or self._fetches % self.refresh_every == 0:
            self.neighbors = similar_nodes(memory, self.k)
        self.neighbors = self.neighbors.to(memory.device)
        self._fetches += 1
        mask = torch.zeros(n_id.numel(), dtype=torch.bool, device=h.device)
        if n_id.numel() == 0 or self.neighbors.size(1) == 0:
            return mask
        lu = last_update.index_select(0, n_id)
        dt = (t_now.to(lu.device) - lu).to(torch.float64)
        threshold = torch.quantile(dt, self.quantile)
        # (at or above: the stalest nodes often tie, e.g. never updated ones)
        idx = ((dt >= threshold) & (dt > 0)).nonzero().view(-1)
        if idx.numel() == 0:
            return mask
        nb = self.neighbors.index_select(0, n_id.index_select(0, idx))  # [m, k]
        fresh = last_update[nb] > lu.index_select(0, idx).unsqueeze(-1)
        count = fresh.sum(-1)
        keep = (count > 0).nonzero().view(-1)
        if keep.numel() == 0:
            return mask
        nb, fresh, count, idx = nb[keep], fresh[keep], count[keep], idx[keep]
        mean = (memory[nb] * fresh.unsqueeze(-1).to(memory.dtype)).sum(1) / count.unsqueeze(-1)
        rows = h.index_select(0, idx)
        h.index_copy_(0, idx, rows.mul_(self.lam).add_(mean.to(h.dtype), alpha=1 - self.lam))
        mask[idx] = True
        self.corrected += idx.numel()
        return mask
