r"""Data-parallel training on :mod:`torch.distributed` with replicated
memory (see ``docs/distributed.md``)."""
from pyg_mspipe.distributed.batches import ShareBatches, share_bounds
from pyg_mspipe.distributed.context import DistributedContext, DistributedError
from pyg_mspipe.distributed.exchange import ExchangeRecord, WriteBackExchange
from pyg_mspipe.distributed.gradients import (
    all_reduce_gradients,
    broadcast_parameters,
    unique_parameters,
)
from pyg_mspipe.distributed.loader import ShareLoader
from pyg_mspipe.distributed.trainer import DistributedTraining
from pyg_mspipe.distributed.training import train_steps

__all__ = [
    "DistributedContext",
    "DistributedError",
    "DistributedTraining",
    "ShareBatches",
    "ShareLoader",
    "WriteBackExchange",
    "ExchangeRecord",
    "share_bounds",
    "all_reduce_gradients",
    "broadcast_parameters",
    "unique_parameters",
    "train_steps",
]
