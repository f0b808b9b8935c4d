r"""The training engine of the ``pyg-mspipe`` program (not library API):
PyG's ``examples/tgn.py`` loops for TGN, JODIE, DyRep and APAN
(:func:`build_model`), evaluation protocols, metrics and a phase timer."""
from pyg_mspipe.engine.data import find_data_file, resolve_data
from pyg_mspipe.engine.evaluation import EvalProtocol, evaluate_link_prediction
from pyg_mspipe.engine.metrics import average_precision, roc_auc
from pyg_mspipe.engine.models import (
    MODELS,
    APANModel,
    DyRepModel,
    GraphAttentionEmbedding,
    JODIEModel,
    LinkPredictor,
    build_model,
)
from pyg_mspipe.engine.negatives import NegativeEdges, NegativeSampler
from pyg_mspipe.engine.ranking import mrr_hits
from pyg_mspipe.engine.splits import LinkSplit, inductive_split, transductive_split
from pyg_mspipe.engine.stopping import EarlyStopping
from pyg_mspipe.engine.timing import PhaseTimer
from pyg_mspipe.engine.training import (
    TGNModel,
    build_tgn,
    evaluate,
    train_epoch,
    train_steps,
)

__all__ = [
    "TGNModel",
    "JODIEModel",
    "DyRepModel",
    "APANModel",
    "MODELS",
    "build_model",
    "build_tgn",
    "train_epoch",
    "train_steps",
    "evaluate",
    "evaluate_link_prediction",
    "EvalProtocol",
    "LinkSplit",
    "transductive_split",
    "inductive_split",
    "NegativeSampler",
    "NegativeEdges",
    "mrr_hits",
    "EarlyStopping",
    "GraphAttentionEmbedding",
    "LinkPredictor",
    "average_precision",
    "roc_auc",
    "PhaseTimer",
    "find_data_file",
    "resolve_data",
]
