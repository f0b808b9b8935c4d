r"""Building one training run from a :class:`TrainConfig`: data, split,
model, neighbour loader and loaders (the one place a run is set up, so that
other launchers, e.g. a distributed one, can extend it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_geometric.data import TemporalData

from pyg_mspipe import LastNeighborLoader, TemporalDataLoader
from pyg_mspipe.cli.config import TrainConfig
from pyg_mspipe.cli.errors import ConfigError
from pyg_mspipe.engine.data import resolve_data
from pyg_mspipe.engine.training import TGNModel, build_tgn

__all__ = ["TrainingRun", "setup_run"]


@dataclass
class TrainingRun:
    r"""The parts of one training run (built by :func:`setup_run`)."""
    config: TrainConfig
    device: torch.device
    data: TemporalData
    train_data: TemporalData
    val_data: TemporalData
    test_data: TemporalData
    model: TGNModel
    neighbor_loader: LastNeighborLoader
    train_loader: TemporalDataLoader
    val_loader: TemporalDataLoader
    test_loader: TemporalDataLoader

    def checkpoint_objects(self) -> dict:
        r"""The objects a checkpoint holds, by name (for
        :func:`~pyg_mspipe.save_checkpoint` / :func:`~pyg_mspipe.load_checkpoint`)."""
        model = self.model
        return dict(memory=model.memory, gnn=model.gnn, link_pred=model.link_pred,
                    optimizer=model.optimizer, neighbor_loader=self.neighbor_loader,
                    loader=self.train_loader)


def setup_run(config: TrainConfig) -> TrainingRun:
    r"""Builds the run :obj:`config` describes, seeded with
    :obj:`config.seed`: the data (:func:`~pyg_mspipe.engine.data.resolve_data`:
    it raises :class:`~pyg_mspipe.datasets.DataFormatError` for a bad spec or
    file) and its chronological split, the model,
    pyg_mspipe's neighbour loader and loaders (the training loader pipelined
    when :obj:`config.staleness_bound` is set). The library's refusals of the
    data or options (:class:`ValueError`, :class:`TypeError`) become a
    :class:`ConfigError`.

    Args:
        config (TrainConfig): The run.
    """
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    data = resolve_data(config.data, format=config.format, msg_dim=config.msg_dim,
                        root=config.data_root)
    try:
        train_data, val_data, test_data = data.train_val_test_split(
            val_ratio=config.val_ratio, test_ratio=config.test_ratio)
        if min(d.num_events for d in (train_data, val_data, test_data)) == 0:
            raise ValueError(f"{data.num_events} events leave an empty split at val ratio "
                             f"{config.val_ratio} and test ratio {config.test_ratio}")
        memory_kwargs = {"storage": config.storage} if config.storage else {}
        model = build_tgn(data.num_nodes, data.msg.size(-1), memory_dim=config.memory_dim,
                          time_dim=config.time_dim, embedding_dim=config.embedding_dim,
                          lr=config.lr, device=device, **memory_kwargs)
        neighbor_loader = LastNeighborLoader(data.num_nodes, size=config.neighbors,
                                             device=device)
        pipeline = {}
        if config.pipelined:
            pipeline = dict(staleness_bound=config.staleness_bound,
                            schedule=config.schedule, mitigation=config.mitigation)
        train_loader = TemporalDataLoader(train_data, batch_size=config.batch_size,
                                          neg_sampling_ratio=1.0, memory=model.memory,
                                          neighbor_loader=neighbor_loader, device=device,
                                          **pipeline)
        val_loader, test_loader = (
            TemporalDataLoader(d, batch_size=config.batch_size, neg_sampling_ratio=1.0)
            for d in (val_data, test_data))
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc
    return TrainingRun(config, device, data, train_data, val_data, test_data, model,
                       neighbor_loader, train_loader, val_loader, test_loader)
