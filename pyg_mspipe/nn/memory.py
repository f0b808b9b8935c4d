r"""A fast, exact drop-in replacement for PyG's :class:`TGNMemory`."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import GRUCell

from pyg_mspipe._validation import check_events, check_index
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._executor import SequentialExecutor, installed
from pyg_mspipe.nn._state import MemoryState
from pyg_mspipe.nn._update import EventPlan
from pyg_mspipe.nn.time_encoder import TimeEncoder

__all__ = ["TGNMemory"]


class TGNMemory(torch.nn.Module):
    r"""The Temporal Graph Network (TGN) memory model from the
    `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ paper, as a drop-in replacement for
    :class:`torch_geometric.nn.TGNMemory`: same constructor, methods,
    submodules, parameter and buffer names, checkpoints and numbers.

    Every read and write runs in an executor: sequential by default, the
    MSPipe pipeline during an epoch of a
    :class:`~pyg_mspipe.TemporalDataLoader` with :obj:`staleness_bound`.

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
        validate (bool, optional): Check inputs (ids, dtypes, shapes, finite
            messages, sorted timestamps) before touching any state, raising
            :class:`ValueError` or :class:`TypeError`. (default: :obj:`True`)
        storage (str or torch.device, optional): :obj:`"cpu"` keeps the
            state in (pinned) host memory wherever the parameters are; each
            call gathers and writes back only the rows it needs.
            :obj:`None` keeps it with the parameters. (default: :obj:`None`)
        updater (torch.nn.Module, optional): The memory updater,
            :obj:`updater(message, memory) -> memory` (kept as
            :obj:`gru`, PyG's name).
            (default: :obj:`GRUCell(message_module.out_channels, memory_dim)`)
    """

    #: Whether evaluation mode reads the stored memory and leaving training
    #: mode flushes, as PyG's TGN (not :class:`~pyg_mspipe.nn.APANMemory`).
    flushes_on_eval: bool = True

    #: The attribute name of the updater (PyG's :obj:`gru`).
    updater_name: str = "gru"

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 message_module: Callable, aggregator_module: Callable, *,
                 validate: bool = True, storage: str | torch.device | None = None,
                 updater: torch.nn.Module | None = None):
        super().__init__()
        for name, value in (("num_nodes", num_nodes), ("raw_msg_dim", raw_msg_dim),
                            ("memory_dim", memory_dim), ("time_dim", time_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int (got {value!r})")
        if not hasattr(message_module, "out_channels"):
            raise TypeError("'message_module' must define 'out_channels' (like IdentityMessage)")
        if storage is not None:
            storage = torch.device(storage)
            if storage.type != "cpu":
                raise ValueError(f"'storage' must be None or 'cpu' (got {storage!r})")

        self.num_nodes = num_nodes
        self.raw_msg_dim = raw_msg_dim
        self.memory_dim = memory_dim
        self.time_dim = time_dim
        self.validate = validate
        self.storage = storage

        self.msg_s_module = message_module
        self.msg_d_module = copy.deepcopy(message_module)
        self.aggr_module = aggregator_module
        self.time_enc = TimeEncoder(time_dim)
        setattr(self, self.updater_name,
                updater if updater is not None else GRUCell(message_module.out_channels,
                                                            memory_dim))
        # PyG's scratch buffer, for its state_dict keys
        self.register_buffer("_assoc", torch.zeros(num_nodes, dtype=torch.long))

        self._committer = None
        #: The state (see :class:`~pyg_mspipe.nn.MemoryState`).
        self.state = self._make_state()
        self._sequential = SequentialExecutor(self.state, self._make_steps())
        self._executor = self._sequential
        self.reset_parameters()

    def _make_state(self) -> MemoryState:
        # the hook another model overrides
        return MemoryState(self.num_nodes, self.memory_dim, self.raw_msg_dim, self.storage)

    def _make_steps(self) -> update.UpdateSteps:
        # the hook another model overrides
        return update.UpdateSteps(update.keeps_one_message(self), self.num_nodes,
                                  self.state.store)

    @property
    def memory(self) -> Tensor:
        r"""The memory of every node, :obj:`[num_nodes, memory_dim]`."""
        return self.state.memory

    @property
    def last_update(self) -> Tensor:
        r"""The last update time of every node, :obj:`[num_nodes]`."""
        return self.state.last_update

    @property
    def msg_store(self):
        r"""The pending messages (:class:`~pyg_mspipe.MessageStore`)."""
        return self.state.store

    @property
    def device(self) -> torch.device:
        r"""The device of the module's parameters."""
        return self.time_enc.lin.weight.device

    @property
    def steps(self):
        r"""The update steps every read and write runs; assign a wrapper to
        observe them or delay or fail a stage."""
        return self._sequential.steps

    @steps.setter
    def steps(self, steps):
        self._check_sequential("replacing 'steps'")
        self._sequential.steps = steps
        self._sequential.forget()

    def set_committer(self, committer: Callable | None):
        r"""Hands every training-mode write-back to
        :obj:`committer(write_back, plan)` instead of applying it, once per
        iteration in order (both :obj:`None` for an empty batch), e.g.
        :class:`~pyg_mspipe.distributed.WriteBackExchange`. :obj:`None`
        applies it (the default). Refused while a pipelined epoch runs."""
        if committer is not None and not callable(committer):
            raise TypeError(f"'committer' must be callable or None (got "
                            f"{type(committer).__name__})")
        self._check_sequential("set_committer()")
        self._committer = committer
        self._sequential.committer = committer

    def _check_sequential(self, what: str):
        if installed(self) is not None:
            raise RuntimeError(f"{what} while a pipelined epoch runs: finish the epoch, or "
                               f"close its iterator, first")

    # ----------------------------------------------------------------- reset
    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        # PyG's order: the same RNG draws
        for module in (self.msg_s_module, self.msg_d_module, self.aggr_module,
                       self.time_enc, getattr(self, self.updater_name)):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.reset_state()

    def reset_state(self):
        r"""Resets the memory to its initial state."""
        self._executor.reset()

    def detach(self):
        r"""Detaches the memory from gradient computation."""
        if self.state.memory.requires_grad:  # (never while a pipeline writes it)
            self.state.memory.detach_()
        self._executor.forget()

    # ---------------------------------------------------------------- update
    def forward(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns, for all nodes :obj:`n_id`, their current memory and their
        last updated timestamp (in training mode: updated with their pending
        messages, differentiably).

        Args:
            n_id (torch.Tensor): Node ids, :obj:`[n]`.
        """
        if self.validate:
            check_index("n_id", n_id, self.num_nodes, device=self.device)
        if self.training or not self.flushes_on_eval:
            return self._executor.forward(n_id, self)
        return self._executor.read(n_id)

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
        plan = self._plan(src, dst, t, raw_msg)
        self._executor.update_state(plan, self, self.training, self.flushes_on_eval)

    def _plan(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> EventPlan | None:
        # None for an empty batch (allowed with a committer: a rank's share
        # may be empty)
        if self.validate and not (self._committer is not None and isinstance(src, Tensor)
                                  and src.numel() == 0):
            check_events(src, dst, t, raw_msg, num_nodes=self.num_nodes,
                         msg_dim=self.raw_msg_dim, device=self.device)
        if src.numel() == 0:
            return None
        return self.steps.plan(src, dst, t, raw_msg)

    def train(self, mode: bool = True):
        r"""Sets the module in training mode. Leaving training mode flushes all
        pending messages into the memory (as PyG does)."""
        if self.training and not mode and self.flushes_on_eval:
            self._executor.flush(self)
        self._executor.forget()
        return super().train(mode)

    # ----------------------------------------------------------- persistence
    def _apply(self, fn, recurse=True):
        built = hasattr(self, "_sequential")  # (not while __init__ runs)
        if built:
            self._check_sequential("TGNMemory.to() (or .cuda(), .double(), ...)")
        super()._apply(fn, recurse)
        if built:
            floating = fn(torch.empty(0))
            self.state.place(floating.device, floating.dtype)
            self._sequential.forget()
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        with self._executor.paused(changes=False):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            state = self.state
            memory = state.memory if keep_vars else state.memory.detach()
            destination[prefix + "memory"] = memory
            destination[prefix + "last_update"] = state.last_update
            extra = state.extra_state()
            destination[prefix + "msg_store._extra_state"] = extra.pop("store")
            destination[prefix + "_extra_state"] = {"version": 1, **extra}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # PyG's checkpoints (no messages, no extra state) load too
        with self._executor.paused():
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                          missing_keys, unexpected_keys, error_msgs)
            keys = {name: prefix + name for name in
                    ("memory", "last_update", "msg_store._extra_state", "_extra_state")}
            for key in keys.values():
                if key in unexpected_keys:
                    unexpected_keys.remove(key)
            for name in ("memory", "last_update"):
                if keys[name] not in state_dict and strict:
                    missing_keys.append(keys[name])
            extra = state_dict.get(keys["_extra_state"])
            if extra is not None and (not isinstance(extra, dict)
                                      or extra.get("version") != 1):
                error_msgs.append("TGNMemory: unsupported extra state in checkpoint")
                return
            extra = dict(extra or {})
            extra.pop("version", None)
            if keys["msg_store._extra_state"] in state_dict:
                extra["store"] = state_dict[keys["msg_store._extra_state"]]
            try:
                self.state.load(state_dict.get(keys["memory"]),
                                state_dict.get(keys["last_update"]), extra)
            except RuntimeError as exc:
                error_msgs.append(str(exc))
            self._executor.forget()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim}"
                + ("" if self.storage is None else f", storage='{self.storage}'") + ")")
