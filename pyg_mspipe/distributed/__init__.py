r"""Data-parallel training on :mod:`torch.distributed` with replicated
memory (see ``docs/distributed.md``)."""
from pyg_mspipe.distributed.context import DistributedContext, DistributedError
from pyg_mspipe.distributed.exchange import WriteBackExchange
from pyg_mspipe.distributed.loader import ShareLoader
from pyg_mspipe.distributed.trainer import DistributedTraining

__all__ = ["DistributedContext", "DistributedError", "DistributedTraining", "ShareLoader",
           "WriteBackExchange"]
