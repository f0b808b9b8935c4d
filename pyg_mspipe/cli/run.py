r"""Building one training run from a :class:`TrainConfig`: data, split,
model, neighbour loader, loaders and evaluation protocol (the one place a
run is set up, so that other launchers, e.g. a distributed one, can extend
it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.datasets import load_tgb
from pyg_mspipe.distributed import DistributedTraining
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.evaluation import EvalProtocol
from pyg_mspipe.engine.models import TGNModel, build_model
from pyg_mspipe.engine.negatives import NegativeSampler
from pyg_mspipe.engine.recipes import (
    DYGLIB_MODELS,
    EventTGNModel,
    build_event_tgn,
    dyglib_model,
)
from pyg_mspipe.engine.splits import (
    DYGLIB_DRAW_SEED,
    LinkSplit,
    inductive_split,
    transductive_split,
)
from pyg_mspipe.engine.tgb import TGBProtocol, tgb_split
from pyg_mspipe.nn.recent_neighbors import RecentNeighborSampler

__all__ = ["TrainingRun", "setup_run", "eval_protocol", "is_tgb", "train_candidates"]


@dataclass
class TrainingRun:
    r"""The parts of one training run (built by :func:`setup_run`).

    Attributes:
        config (TrainConfig): The configuration.
        device (torch.device): The compute device.
        data (TemporalData): The loaded stream.
        split (LinkSplit): Its chronological split; the loops read
            :obj:`split.stream`.
        protocol (EvalProtocol or TGBProtocol): The evaluation protocol
            (TGB's for :obj:`tgb:<dir>` data).
        model (TGNModel): The engine's model (:func:`~pyg_mspipe.engine.models.build_model`).
        neighbor_loader (LastNeighborLoader or None): :obj:`None` for models
            without a sampled neighbourhood (JODIE, APAN).
        train_loader, val_loader, test_loader (TemporalDataLoader): The loaders.
    """
    config: TrainConfig
    device: torch.device
    data: TemporalData
    split: LinkSplit
    protocol: EvalProtocol | TGBProtocol
    model: TGNModel
    neighbor_loader: LastNeighborLoader | None
    train_loader: TemporalDataLoader
    val_loader: TemporalDataLoader
    test_loader: TemporalDataLoader
    #: The data-parallel wrapper of a run launched by torchrun
    #: (:func:`pyg_mspipe.cli.distributed.distribute_run`), else :obj:`None`.
    dp: DistributedTraining | None = None
    #: The neighbour index the recipe :obj:`"dyglib"` evaluates with: every
    #: event of :obj:`split.full` (DyGLib's ``full_neighbor_sampler``), else
    #: :obj:`None`.
    eval_sampler: RecentNeighborSampler | None = None

    @property
    def per_event(self) -> bool:
        r"""Whether the run trains and evaluates each (node, time) pair from
        its own neighbours (the recipe :obj:`"dyglib"`'s TGN,
        :mod:`~pyg_mspipe.engine.recipes`' loops) rather than with the
        engine's loops."""
        return isinstance(self.model, EventTGNModel)

    def checkpoint_objects(self) -> dict:
        r"""The objects a checkpoint holds, by name (for
        :func:`~pyg_mspipe.save_checkpoint` / :func:`~pyg_mspipe.load_checkpoint`)."""
        model = self.model
        objects = dict(memory=model.memory, gnn=model.gnn, link_pred=model.link_pred,
                       optimizer=model.optimizer, loader=self.train_loader)
        if self.neighbor_loader is not None:
            objects["neighbor_loader"] = self.neighbor_loader
        return objects


def eval_protocol(config: TrainConfig) -> EvalProtocol:
    r"""The evaluation protocol :obj:`config` asks for (:class:`ConfigError`
    if it is not one)."""
    try:
        return EvalProtocol(config.split, negatives=config.negatives,
                            num_negatives=config.num_negatives,
                            metrics=tuple(config.metrics), seed=config.eval_seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def is_tgb(spec) -> bool:
    r"""Whether the data spec :obj:`spec` is a TGB dataset, :obj:`tgb:<dir>`."""
    return str(spec).lower().startswith("tgb:")


def _check_tgb(config: TrainConfig) -> tuple[str, ...]:
    r"""The metrics of a run on :obj:`tgb:<dir>` data: TGB fixes the split
    and the negatives, and its :obj:`Evaluator` gives MRR and Hits@k."""
    fixed = TrainConfig(data=config.data)
    for name in ("split", "val_ratio", "test_ratio", "negatives", "num_negatives",
                 "format", "data_root"):
        if getattr(config, name) != getattr(fixed, name):
            raise ConfigError(f"--{name.replace('_', '-')}: {config.data} is evaluated with "
                              "TGB's split and negatives (no --split, --val-ratio, "
                              "--test-ratio, --negatives, --num-negatives, --format, "
                              "--data-root)")
    bad = [m for m in config.metrics if m != "mrr" and not m.startswith("hits@")]
    if bad:
        raise ConfigError(f"--metrics: TGB's Evaluator gives mrr and hits@k, not "
                          f"{', '.join(bad)}")
    return tuple(config.metrics)


def train_candidates(config: TrainConfig, split: LinkSplit) -> torch.Tensor | None:
    r"""The training negatives' candidate destinations :obj:`config` asks
    for: :obj:`None` for PyG's (every id in :obj:`[min(dst), max(dst)]` of
    the training events), the training events' distinct destinations for
    DyGLib's (its ``train_neg_edge_sampler``: the :obj:`"random"`
    :class:`~pyg_mspipe.engine.negatives.NegativeSampler` on the training
    events, sources the positives')."""
    if config.train_negatives == "pyg":
        return None
    return NegativeSampler("random", split.train).unique_dst


def _check_dyglib(config: TrainConfig):
    if config.model not in DYGLIB_MODELS:
        raise ConfigError(f"--recipe dyglib: implemented for --model "
                          f"{', '.join(DYGLIB_MODELS)} (got {config.model})")
    if is_tgb(config.data):
        raise ConfigError("--recipe dyglib: not with tgb:<dir> data yet: use --recipe pyg")


def setup_run(config: TrainConfig) -> TrainingRun:
    r"""Builds the run :obj:`config` describes (with :obj:`config.threads`
    intra-op threads if set), seeded with :obj:`config.seed`: the data (:func:`~pyg_mspipe.engine.data.resolve_data`,
    or :func:`~pyg_mspipe.datasets.load_tgb` for :obj:`tgb:<dir>`, evaluated
    with a :class:`~pyg_mspipe.engine.tgb.TGBProtocol`: they raise
    :class:`~pyg_mspipe.datasets.DataFormatError` for a bad spec or file)
    and its chronological split, the model, pyg_mspipe's neighbour
    loader and loaders (the training loader pipelined when
    :obj:`config.staleness_bound` is set), the evaluation protocol. The
    library's refusals of the data or options (:class:`ValueError`,
    :class:`TypeError`) become a :class:`ConfigError`.

    Args:
        config (TrainConfig): The run.
    """
    device = torch.device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    tgb = is_tgb(config.data)
    protocol = _check_tgb(config) if tgb else eval_protocol(config)
    torch.manual_seed(config.seed)
    if tgb:
        dataset = load_tgb(config.data.split(":", 1)[1], msg_dim=config.msg_dim,
                           spec=config.data)
        data = dataset.data
        protocol = TGBProtocol(dataset, protocol)
    else:
        data = resolve_data(config.data, format=config.format, msg_dim=config.msg_dim,
                            root=config.data_root, features=config.data_features)
    try:
        if tgb:
            split = tgb_split(dataset)
        elif config.split == "inductive":
            draw = config.split_draw
            seed = DYGLIB_DRAW_SEED if draw == "dyglib" else config.eval_seed
            split = inductive_split(data, config.val_ratio, config.test_ratio,
                                    new_node_ratio=config.new_node_ratio, seed=seed, draw=draw)
        else:
            split = transductive_split(data, config.val_ratio, config.test_ratio)
        if min(d.num_events for d in (split.train, split.val, split.test)) == 0:
            raise ValueError(f"{data.num_events} events leave an empty split at val ratio "
                             f"{config.val_ratio} and test ratio {config.test_ratio}")
        memory_kwargs = {"storage": config.storage} if config.storage else {}
        num_nodes = split.full.num_nodes
        eval_sampler = None
        if config.recipe == "dyglib":
            _check_dyglib(config)
        if config.recipe == "dyglib" and config.model == "tgn":
            sampler = RecentNeighborSampler(split.stream, config.neighbors, num_nodes)
            if split.full is not split.stream:
                eval_sampler = RecentNeighborSampler(split.full, config.neighbors,
                                                     num_nodes).to(device)
            model = build_event_tgn(num_nodes, data.msg.size(-1), sampler,
                                    memory_dim=config.memory_dim, time_dim=config.time_dim,
                                    embedding_dim=config.embedding_dim, lr=config.lr,
                                    device=device, **memory_kwargs)
        else:
            model = build_model(config.model, num_nodes, data.msg.size(-1),
                                memory_dim=config.memory_dim, time_dim=config.time_dim,
                                embedding_dim=config.embedding_dim, lr=config.lr,
                                num_neighbors=config.neighbors, device=device,
                                **memory_kwargs)
            if config.recipe == "dyglib":
                dyglib_model(model)
        neighbor_loader = None
        if model.needs_neighbors:
            neighbor_loader = LastNeighborLoader(num_nodes, size=config.neighbors,
                                                 device=device)
        # what the training loader samples ahead: the neighbour loader, or
        # the recipe's per-event sampler (for the pipeline's fetches too)
        ahead = neighbor_loader if neighbor_loader is not None else getattr(model, "sampler",
                                                                             None)
        pipeline = {}
        if config.pipelined:
            pipeline = dict(staleness_bound=config.staleness_bound,
                            schedule=config.schedule)
        train_loader = TemporalDataLoader(split.train, batch_size=config.batch_size,
                                          neg_sampling_ratio=1.0, memory=model.memory,
                                          neighbor_loader=ahead,
                                          device=device,
                                          neg_dst_candidates=train_candidates(config, split),
                                          **pipeline)
        val_loader, test_loader = (
            TemporalDataLoader(d, batch_size=config.batch_size, neg_sampling_ratio=1.0)
            for d in (split.val, split.test))
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc
    return TrainingRun(config, device, data, split, protocol, model, neighbor_loader,
                       train_loader, val_loader, test_loader, eval_sampler=eval_sampler)
