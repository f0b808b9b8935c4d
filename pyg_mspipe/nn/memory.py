r"""A fast, exact drop-in replacement for PyG's :class:`TGNMemory`."""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import GRUCell

from pyg_mspipe._validation import check_events, check_index
from pyg_mspipe.nn import _update as update
from pyg_mspipe.nn._state import MemoryState, WriteBack
from pyg_mspipe.nn._update import EventPlan
from pyg_mspipe.nn.time_encoder import TimeEncoder

__all__ = ["TGNMemory"]


class ForwardResult(NamedTuple):
    r"""What a training-mode :meth:`TGNMemory.forward` computed, and the
    versions it was computed from: :meth:`TGNMemory.update_state` reuses it
    only while none of them changed (the state, a parameter, or the returned
    tensors themselves, edited in place by the caller)."""
    n_id: Tensor
    memory: Tensor
    last_update: Tensor
    versions: tuple

    def position(self, n_id: Tensor, scratch: Tensor) -> Tensor | None:
        r"""Where each node of :obj:`n_id` is in this result, or :obj:`None`
        if some node is not in it (:obj:`scratch`: an :obj:`[N]` buffer)."""
        cached = self.n_id
        last = cached.numel() - 1
        if last < 0:
            return None
        # forward's n_id is usually sorted (LastNeighborLoader's is): binary
        # search; otherwise look the positions up by node id.
        pos = torch.searchsorted(cached, n_id).clamp_(max=last)
        if bool((cached.index_select(0, pos) == n_id).all()):
            return pos
        scratch[cached] = torch.arange(last + 1, device=cached.device)
        pos = scratch.index_select(0, n_id).clamp_(0, last)
        return pos if bool((cached.index_select(0, pos) == n_id).all()) else None


def tensor_versions(modules: torch.nn.Module, *tensors: Tensor) -> tuple:
    r"""Identity and in-place version of every parameter of :obj:`modules`
    and of :obj:`tensors` (equal before and after iff none was replaced or
    changed in place)."""
    return tuple((id(x), x._version) for x in (*modules.parameters(), *tensors))


class TGNMemory(torch.nn.Module):
    r"""The Temporal Graph Network (TGN) memory model from the
    `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ paper, as a drop-in replacement for
    :class:`torch_geometric.nn.TGNMemory`: same constructor, methods,
    submodules, parameter and buffer names, checkpoints and numbers.

    It composes a :class:`~pyg_mspipe.nn.MemoryState` (memory, last update,
    pending messages in a vectorised :class:`~pyg_mspipe.MessageStore`) with
    the update steps of :mod:`pyg_mspipe.nn._update`. :meth:`update_state`
    reuses what :meth:`forward` computed for the same nodes in the same
    iteration (while nothing it depends on changed); with
    :class:`LastAggregator` and :class:`IdentityMessage` only the message
    each node keeps is built (same values and gradients).

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
        storage (str or torch.device, optional): :obj:`None` keeps the state
            with the parameters (moved by :meth:`to`); :obj:`"cpu"` keeps it
            in host memory (pinned when CUDA is available) wherever
            :meth:`to` moves the parameters: each call gathers the rows it
            needs and writes back the rows it changed. (default: :obj:`None`)
        updater (torch.nn.Module, optional): The memory updater,
            :obj:`updater(message, memory) -> memory` (kept as :obj:`gru`).
            (default: :obj:`GRUCell(message_module.out_channels, memory_dim)`)
    """

    #: Whether evaluation mode reads the memory as it is and applies each
    #: batch's messages at once, and leaving training mode flushes the pending
    #: messages (PyG's TGN). A model whose update is the same in both modes
    #: (:class:`~pyg_mspipe.nn.APANMemory`) sets it to :obj:`False`.
    flushes_on_eval: bool = True

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
        self.gru = updater if updater is not None else GRUCell(message_module.out_channels,
                                                               memory_dim)
        # (PyG's scratch buffer, kept for its state_dict keys; zeros rather
        # than garbage: deterministic checkpoints)
        self.register_buffer("_assoc", torch.zeros(num_nodes, dtype=torch.long))

        #: The state (see :class:`~pyg_mspipe.nn.MemoryState`).
        self.state = MemoryState(num_nodes, memory_dim, raw_msg_dim, storage)
        self._forward: ForwardResult | None = None
        self._offered: EventPlan | None = None
        self._pipeline = None
        self._committer = None
        self.reset_parameters()

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
    def keeps_one_message(self) -> bool:
        r"""Whether the update reads only each node's kept message
        (:func:`~pyg_mspipe.nn._update.keeps_one_message`)."""
        return update.keeps_one_message(self)

    def update_steps(self) -> update.UpdateSteps:
        r"""The update steps this memory runs, and the pipeline with it:
        plan, gather, compute, partners, write-back
        (:class:`~pyg_mspipe.nn._update.UpdateSteps`)."""
        return update.UpdateSteps(self.keeps_one_message, self.num_nodes,
                                  self.state.store.msg.dtype)

    # -------------------------------------------------------------- pipeline
    @property
    def pipeline(self):
        r"""The pipeline attached with :meth:`attach_pipeline`, or :obj:`None`."""
        return self._pipeline

    def attach_pipeline(self, pipeline):
        r"""Hands training-mode :meth:`forward` and :meth:`update_state` to
        :obj:`pipeline` (a :class:`~pyg_mspipe.pipeline.MemoryPipeline`) until
        :meth:`detach_pipeline`. Every other access to the state (evaluation
        mode, :meth:`train`, :meth:`reset_state`, checkpoints) runs inside
        :obj:`pipeline.paused()`: the pipeline commits what it was handed and
        holds still while the state changes from outside."""
        if self._pipeline is not None and self._pipeline is not pipeline:
            raise RuntimeError("another pipeline is attached to this TGNMemory: close its "
                               "epoch first")
        self._pipeline = pipeline
        self._forward = None

    def detach_pipeline(self, pipeline):
        r"""Undoes :meth:`attach_pipeline` (a no-op for another pipeline)."""
        if self._pipeline is pipeline:
            self._pipeline = None

    # ---------------------------------------------------------------- commit
    def set_committer(self, committer: Callable | None):
        r"""Hands every training-mode write-back to :obj:`committer` instead
        of applying it (:obj:`None`: apply it, the default).
        :obj:`committer(write_back, plan)` is called exactly once per
        training iteration, by :meth:`update_state` or by the attached
        pipeline's write-back stage, with the iteration's
        :class:`~pyg_mspipe.nn.WriteBack` and
        :class:`~pyg_mspipe.nn._update.EventPlan` (both :obj:`None` for an
        empty batch), and must change the state only through
        :meth:`MemoryState.apply` (e.g.
        :class:`~pyg_mspipe.distributed.WriteBackExchange`, which applies
        all ranks' write-backs of the iteration)."""
        if committer is not None and not callable(committer):
            raise TypeError(f"'committer' must be callable or None (got "
                            f"{type(committer).__name__})")
        self._committer = committer

    def commit(self, write_back: WriteBack | None, plan: EventPlan | None = None):
        r"""Commits one training iteration's write-back: hands it to the
        committer set with :meth:`set_committer`, or applies it
        (:meth:`MemoryState.apply`; nothing for :obj:`None`)."""
        if self._committer is not None:
            self._committer(write_back, plan)
        elif write_back is not None:
            self.state.apply(write_back)

    def _exclusive(self, changes: bool = True):
        # The caller alone reads (or, with `changes`, writes) the state.
        pipeline = self._pipeline
        if pipeline is None:
            return contextlib.nullcontext()
        return pipeline.paused(changes)

    # ----------------------------------------------------------------- reset
    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (and the state)."""
        # (PyG's order: the same draws of the RNG, the same parameters)
        for module in (self.msg_s_module, self.msg_d_module, self.aggr_module,
                       self.time_enc, self.gru):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.reset_state()

    def reset_state(self):
        r"""Resets the memory to its initial state (O(1) Python work)."""
        with self._exclusive():
            self.state.reset()
            self._forward = None

    def detach(self):
        r"""Detaches the memory from gradient computation."""
        if self.state.memory.requires_grad:  # (never while a pipeline writes it)
            self.state.memory.detach_()
        self._forward = None

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
        if self._pipeline is not None and self.training:
            return self._pipeline.forward(n_id)
        updating = self.training or not self.flushes_on_eval
        with self._exclusive(changes=updating):
            if not updating:
                state_id = n_id.to(self.state.device)
                return (self.state.memory.index_select(0, state_id).to(n_id.device),
                        self.state.last_update.index_select(0, state_id).to(n_id.device))
            memory, last_update = self.updated_memory(n_id)
            self._forward = ForwardResult(n_id, memory, last_update,
                                          self._versions(memory, last_update))
            return memory, last_update

    def updated_memory(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        r"""The memory and last update of :obj:`n_id` after their pending
        messages, from the current state (:func:`~pyg_mspipe.nn._update.gather`
        then :func:`~pyg_mspipe.nn._update.compute`); changes nothing."""
        steps = self.update_steps()
        inputs = steps.gather(self.state, n_id.to(self.state.device))
        return steps.compute(update.move_inputs(inputs, n_id.device), self)

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
        self._update(src, dst, t, raw_msg)

    def _update(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor,
                context=None):
        # update_state with the plan's context (see EventPlan.context).
        if self._pipeline is not None and self.training:
            return self._pipeline.update_state(src, dst, t, raw_msg, context=context)
        with self._exclusive():
            forward, self._forward = self._forward, None
            plan = self.plan_update(src, dst, t, raw_msg, last_t=self.state.last_t,
                                    context=context)
            if plan is None:
                if self.training:  # (a committer sees every iteration)
                    self.commit(None, None)
                return
            if self.training or not self.flushes_on_eval:
                memory, last_update = self._reuse(forward, plan.n_id)
                write_back = self.update_steps().write_back(self.state, plan, memory,
                                                            last_update, self)
                if self.training:
                    self.commit(write_back, plan)
                else:
                    self.state.apply(write_back)
            else:
                messages = self.update_steps().messages(self.state, plan, self, updated=False)
                self.state.store_messages(messages, plan.t_max)
                memory, last_update = self.updated_memory(plan.n_id)
                self.state.write(plan.n_id, memory, last_update)

    def _versions(self, *tensors: Tensor) -> tuple:
        return (self.state.clock, tensor_versions(self, *tensors))

    def _reuse(self, forward: ForwardResult | None, n_id: Tensor) -> tuple[Tensor, Tensor]:
        # forward's rows of n_id if nothing they depend on changed since.
        if forward is not None and forward.versions == self._versions(forward.memory,
                                                                        forward.last_update):
            pos = forward.position(n_id, self._assoc)
            if pos is not None:
                return forward.memory.index_select(0, pos), forward.last_update.index_select(0, pos)
        return self.updated_memory(n_id)

    # ------------------------------------------------------- prepared events
    def prepare_update(self, src: Tensor, dst: Tensor, t: Tensor,
                       raw_msg: Tensor) -> EventPlan | None:
        r"""Computes ahead of time, from the events alone, what
        :meth:`update_state` needs (validation, the batch's nodes, the layout
        of its messages in the store). Reads no state, so a background thread
        may call it. Returns :obj:`None` for events :meth:`update_state` would
        reject (it then raises there)."""
        if self.validate:
            try:
                self._check(src, dst, t, raw_msg)
            except (ValueError, TypeError):
                return None
        return self.update_steps().plan(src, dst, t, raw_msg)

    def offer_update(self, plan: EventPlan | None):
        r"""Offers a plan from :meth:`prepare_update` to the next
        :meth:`plan_update`, which takes it if it was made for the same events
        (compared by value, so copies of the batch match)."""
        self._offered = plan

    def plan_update(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor,
                    last_t: Tensor | None = None, context=None) -> EventPlan | None:
        r"""Validates the events (with :obj:`validate`; sorted after
        :obj:`last_t`) and plans their storing: the offered plan if it is for
        these events, else a new one, with :obj:`context` as its
        :attr:`EventPlan.context`. :obj:`None` for an empty batch (an
        error with :obj:`validate`, unless a committer is set: a rank's share
        of a distributed batch may be empty)."""
        plan, self._offered = self._offered, None
        if plan is not None and not plan.matches(src, dst, t, raw_msg):
            plan = None
        if plan is None or (self.validate and last_t is not None
                            and bool(plan.t_min < last_t)):
            if self.validate and not (self._committer is not None and src.numel() == 0
                                      and isinstance(src, Tensor)):
                self._check(src, dst, t, raw_msg, last_t=last_t)
            if src.numel() == 0:
                return None
            plan = self.update_steps().plan(src, dst, t, raw_msg)
        return plan if context is None else plan._replace(context=context)

    def _check(self, src, dst, t, raw_msg, last_t: Tensor | None = None):
        check_events(src, dst, t, raw_msg, num_nodes=self.num_nodes,
                     msg_dim=self.raw_msg_dim, device=self.device, last_t=last_t)

    def train(self, mode: bool = True):
        r"""Sets the module in training mode. Leaving training mode flushes all
        pending messages into the memory (as PyG does)."""
        with self._exclusive():
            if self.training and not mode and self.flushes_on_eval:
                update.flush(self.state, self)
            self._forward = None
            return super().train(mode)

    # ----------------------------------------------------------- persistence
    def _apply(self, fn, recurse=True):
        if self._pipeline is not None:
            raise RuntimeError("TGNMemory.to() (or .cuda(), .double(), ...) while a pipelined "
                               "epoch runs: finish the epoch, or close its iterator, first")
        super()._apply(fn, recurse)
        floating = fn(torch.empty(0))
        self.state.place(floating.device, floating.dtype)
        self._forward = None
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        with self._exclusive(changes=False):
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
        # PyG's TGNMemory has neither pending messages nor extra state in its
        # state_dict: its checkpoints load too.
        with self._exclusive():
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
            self._forward = None

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"raw_msg_dim={self.raw_msg_dim}, memory_dim={self.memory_dim}, "
                f"time_dim={self.time_dim}"
                + ("" if self.storage is None else f", storage='{self.storage}'") + ")")
