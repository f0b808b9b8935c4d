r"""A fast, exact drop-in replacement for PyG's :class:`TGNMemory`."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import GRUCell

from pyg_mspipe._scatter import scatter_argmax, scatter_max_long
from pyg_mspipe.aggregators import LastAggregator
from pyg_mspipe.mailbox import MessageStore
from pyg_mspipe.message import IdentityMessage
from pyg_mspipe.time_encoder import TimeEncoder
from pyg_mspipe.validation import check_events, check_index

__all__ = ["TGNMemory"]


def _is_last_aggregator(module) -> bool:
    if isinstance(module, LastAggregator):
        return True
    try:
        from torch_geometric.nn.models.tgn import LastAggregator as PyGLast
    except ImportError:  # pragma: no cover
        return False
    # PyG's LastAggregator equals ours only with torch_scatter; without it,
    # PyG's fallback breaks ties differently, so we keep calling it as is.
    import torch_geometric.typing

    return isinstance(module, PyGLast) and torch_geometric.typing.WITH_TORCH_SCATTER


def _is_identity_message(module) -> bool:
    if isinstance(module, IdentityMessage):
        return True
    try:
        from torch_geometric.nn.models.tgn import IdentityMessage as PyGIdentity
    except ImportError:  # pragma: no cover
        return False
    return isinstance(module, PyGIdentity)


class TGNMemory(torch.nn.Module):
    r"""The Temporal Graph Network (TGN) memory model from the
    `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ paper, as a drop-in replacement for
    :class:`torch_geometric.nn.TGNMemory`.

    Same constructor, methods, submodules, parameter and buffer names and
    numbers as PyG's, so that a PyG :obj:`state_dict` loads into it, but:

    * pending messages live in a vectorised :class:`~pyg_mspipe.MessageStore`
      (no Python dict, no per-node loop or host synchronisation);
    * the whole state (memory, last update, pending messages) is in
      :meth:`state_dict` and moves with :meth:`to`;
    * :meth:`update_state` reuses the memory that :meth:`forward` computed for
      the same nodes in the same iteration instead of recomputing it (only when
      neither the state nor any parameter changed in between);
    * with :class:`LastAggregator` and :class:`IdentityMessage`, messages are
      only built for the message each node keeps (same values and gradients).

    Args:
        num_nodes (int): The number of nodes to save memories for.
        raw_msg_dim (int): The raw message dimensionality.
        memory_dim (int): The hidden memory dimensionality.
        time_dim (int): The time encoding dimensionality.
        message_module (torch.nn.Module): The message function which combines
            source and destination node memory embeddings, the raw message
            and the time encoding.
        aggregator_module (torch.nn.Module): The message aggregator function
            which aggregates messages to the same destination into a single
            representation.
        validate (bool, optional): Check inputs (node ids in range, dtypes,
            shapes, finite messages, timestamps sorted within and across
            batches) before touching any state. On a GPU this costs one host
            synchronisation per call. (default: :obj:`True`)
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 message_module: Callable, aggregator_module: Callable, *,
                 validate: bool = True):
        super().__init__()
        for name, value in (("num_nodes", num_nodes), ("raw_msg_dim", raw_msg_dim),
                            ("memory_dim", memory_dim), ("time_dim", time_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        if not hasattr(message_module, "out_channels"):
            raise TypeError("'message_module' must define 'out_channels' (like IdentityMessage)")

        self.num_nodes = num_nodes
        self.raw_msg_dim = raw_msg_dim
        self.memory_dim = memory_dim
        self.time_dim = time_dim
        self.validate = validate

        self.msg_s_module = message_module
        self.msg_d_module = copy.deepcopy(message_module)
        self.aggr_module = aggregator_module
        self.time_enc = TimeEncoder(time_dim)
        self.gru = GRUCell(message_module.out_channels, memory_dim)

        self.register_buffer("memory", torch.empty(num_nodes, memory_dim))
        self.register_buffer("last_update", torch.empty(num_nodes, dtype=torch.long))
        self.register_buffer("_assoc", torch.empty(num_nodes, dtype=torch.long))
        # Largest timestamp stored so far (for the "sorted across batches" check).
        self.register_buffer("_last_t", torch.zeros((), dtype=torch.long), persistent=False)

        self.msg_s_store = MessageStore(num_nodes, raw_msg_dim)
        self.msg_d_store = MessageStore(num_nodes, raw_msg_dim)

        self._cache: tuple | None = None
        self._state_version = 0

        self.reset_parameters()

    @property
    def device(self) -> torch.device:
        r"""The device of the module's parameters."""
        return self.time_enc.lin.weight.device

    # ------------------------------------------------------------------ reset
    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        if hasattr(self.msg_s_module, "reset_parameters"):
            self.msg_s_module.reset_parameters()
        if hasattr(self.msg_d_module, "reset_parameters"):
            self.msg_d_module.reset_parameters()
        if hasattr(self.aggr_module, "reset_parameters"):
            self.aggr_module.reset_parameters()
        self.time_enc.reset_parameters()
        self.gru.reset_parameters()
        self.reset_state()

    def reset_state(self):
        r"""Resets the memory to its initial state (O(1) Python work)."""
        self.memory.detach_()
        self.memory.zero_()
        self.last_update.zero_()
        self._last_t.zero_()
        self._reset_message_store()

    def _reset_message_store(self):
        self.msg_s_store.clear()
        self.msg_d_store.clear()
        self._touch()

    def detach(self):
        r"""Detaches the memory from gradient computation."""
        self.memory.detach_()
        self._cache = None

    def _touch(self):
        self._state_version += 1
        self._cache = None

    # ---------------------------------------------------------------- forward
    def forward(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns, for all nodes :obj:`n_id`, their current memory and their
        last updated timestamp (in training mode: updated with their pending
        messages, differentiably).

        Args:
            n_id (torch.Tensor): Node ids, :obj:`[n]`.
        """
        if self.validate:
            check_index("n_id", n_id, self.num_nodes, device=self.memory.device)
        if not self.training:
            return self.memory[n_id], self.last_update[n_id]
        memory, last_update = self._get_updated_memory(n_id)
        self._cache = (self._cache_key(), n_id, memory, last_update)
        return memory, last_update

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor):
        r"""Updates the memory with newly encountered interactions
        :obj:`(src, dst, t, raw_msg)`.

        In training mode the pending messages of the batch's nodes are applied
        first, then the batch's messages become their pending messages. In
        evaluation mode the messages are stored first and applied at once.

        Args:
            src (torch.Tensor): Source node ids, :obj:`[B]`.
            dst (torch.Tensor): Destination node ids, :obj:`[B]`.
            t (torch.Tensor): Timestamps, :obj:`[B]`.
            raw_msg (torch.Tensor): Raw messages, :obj:`[B, raw_msg_dim]`.
        """
        if self.validate:
            check_events(src, dst, t, raw_msg, num_nodes=self.num_nodes,
                         msg_dim=self.raw_msg_dim, device=self.memory.device,
                         last_t=self._last_t)
        if src.numel() == 0:
            return
        n_id = torch.cat([src, dst]).unique()
        if self.training:
            memory, last_update = self._updated_memory_for_update(n_id)
            self._store(src, dst, t, raw_msg)
            self._write(n_id, memory, last_update)
        else:
            self._store(src, dst, t, raw_msg)
            memory, last_update = self._get_updated_memory(n_id)
            self._write(n_id, memory, last_update)
        self._touch()

    def train(self, mode: bool = True):
        r"""Sets the module in training mode. Leaving training mode flushes all
        pending messages into the memory (as PyG does)."""
        if self.training and not mode:
            n_id = torch.arange(self.num_nodes, device=self.memory.device)
            memory, last_update = self._get_updated_memory(n_id)
            self._write(n_id, memory, last_update)
            self._reset_message_store()
        return super().train(mode)

    # ---------------------------------------------------------------- helpers
    def _cache_key(self) -> tuple:
        return (self._state_version, self.memory._version, self.last_update._version,
                tuple(p._version for p in self.parameters()),
                tuple(id(p) for p in self.parameters()))

    def _updated_memory_for_update(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        cache, self._cache = self._cache, None
        if cache is not None and cache[0] == self._cache_key():
            _, c_nid, c_mem, c_lu = cache
            self._assoc[c_nid] = torch.arange(c_nid.numel(), device=c_nid.device)
            pos = self._assoc[n_id].clamp_(0, max(c_nid.numel() - 1, 0))
            if c_nid.numel() > 0 and bool((c_nid[pos] == n_id).all()):
                return c_mem[pos], c_lu[pos]
        return self._get_updated_memory(n_id)

    def _store(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor):
        self.msg_s_store.insert(src, dst, t, raw_msg)
        self.msg_d_store.insert(dst, src, t, raw_msg)
        self._last_t.copy_(torch.maximum(self._last_t, t.max()))

    def _write(self, n_id: Tensor, memory: Tensor, last_update: Tensor):
        self.memory[n_id] = memory
        self.last_update[n_id] = last_update

    def _get_updated_memory(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        num = n_id.numel()
        s, d = self.msg_s_store, self.msg_d_store
        rows_s, own_s = s.locate(n_id)
        rows_d, own_d = d.locate(n_id)
        num_s = rows_s.numel()
        t = torch.cat([s.t[rows_s], d.t[rows_d]])
        owner = torch.cat([own_s, own_d])
        mem_n = self.memory[n_id]
        lu_n = self.last_update[n_id]

        if (t.numel() > 0 and _is_last_aggregator(self.aggr_module)
                and _is_identity_message(self.msg_s_module)
                and _is_identity_message(self.msg_d_module)):
            aggr = self._last_identity_messages(mem_n, lu_n, t, owner, rows_s, rows_d, num_s)
        else:
            other = torch.cat([s.other[rows_s], d.other[rows_d]])
            raw = torch.cat([s.msg[rows_s], d.msg[rows_d]]).to(mem_n.dtype)
            t_enc = self.time_enc((t - lu_n[owner]).to(raw.dtype))
            z_key, z_other = mem_n[owner], self.memory[other]
            msg_s = self.msg_s_module(z_key[:num_s], z_other[:num_s], raw[:num_s],
                                      t_enc[:num_s])
            msg_d = self.msg_d_module(z_key[num_s:], z_other[num_s:], raw[num_s:],
                                      t_enc[num_s:])
            msg = torch.cat([msg_s, msg_d], dim=0)
            aggr = self.aggr_module(msg, owner, t, num)

        memory = self.gru(aggr, mem_n)
        last_update = scatter_max_long(t, owner, num)
        return memory, last_update

    def _last_identity_messages(self, mem_n: Tensor, lu_n: Tensor, t: Tensor, owner: Tensor,
                                rows_s: Tensor, rows_d: Tensor, num_s: int) -> Tensor:
        # LastAggregator keeps one message per node and IdentityMessage works
        # row by row, so only the kept messages need to be built: same values,
        # same gradients (the dropped rows get zero gradient in PyG too).
        num = mem_n.size(0)
        total = t.numel()
        s, d = self.msg_s_store, self.msg_d_store
        win = scatter_argmax(t, owner, num)
        has = win < total
        win = win.clamp(max=total - 1)
        from_s = win < num_s
        row_s = rows_s[win.clamp(max=max(num_s - 1, 0))] if num_s else None
        row_d = rows_d[(win - num_s).clamp(min=0, max=max(total - num_s - 1, 0))] \
            if total > num_s else None
        if row_s is None:
            other, raw, t_w = d.other[row_d], d.msg[row_d], d.t[row_d]
        elif row_d is None:
            other, raw, t_w = s.other[row_s], s.msg[row_s], s.t[row_s]
        else:
            other = torch.where(from_s, s.other[row_s], d.other[row_d])
            raw = torch.where(from_s.unsqueeze(-1), s.msg[row_s], d.msg[row_d])
            t_w = torch.where(from_s, s.t[row_s], d.t[row_d])
        raw = raw.to(mem_n.dtype)
        t_enc = self.time_enc((t_w - lu_n).to(raw.dtype))
        msg = torch.cat([mem_n, self.memory[other], raw, t_enc], dim=-1)
        return torch.where(has.unsqueeze(-1), msg, msg.new_zeros(()))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim})")
