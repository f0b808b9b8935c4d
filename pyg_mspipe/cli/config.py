r"""The configuration of one ``pyg-mspipe train`` run."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TrainConfig", "DYGLIB_DIM"]

#: DyGLib's memory and embedding size on data without node features (it
#: pads node features to 172 and sizes the memory and embedding by them).
DYGLIB_DIM = 172


@dataclass
class TrainConfig:
    r"""Everything ``pyg-mspipe train`` runs with (its options, see
    ``docs/cli.md``). The defaults are PyG's ``examples/tgn.py`` on the
    bundled CollegeMsg data.

    Args:
        data (str): A bundled dataset name, a data file or another spec
            (:obj:`jodie:<name>`, :obj:`tgb:<dir>`, ...). (default: :obj:`"college"`)
        format (str, optional): The data file's format (detected if not
            given). (default: :obj:`None`)
        msg_dim (int, optional): Edge feature size (seeded features for data
            without them; zero-padding for data with fewer). (default: :obj:`None`)
        data_root (str, optional): Download folder of :obj:`jodie:<name>`.
            (default: :obj:`None`)
        edge_features (str, optional): The edge features of data without any:
            :obj:`"random"` (seeded standard normals) or :obj:`"zeros"`
            (DyGLib's and TGB's); :obj:`None`: the recipe's (:obj:`"random"`
            for :obj:`"pyg"`, :obj:`"zeros"` for :obj:`"dyglib"`).
            (default: :obj:`None`)
        model (str): The memory model. (default: :obj:`"tgn"`)
        recipe (str): :obj:`"pyg"` (PyG's ``examples/tgn.py``) or
            :obj:`"dyglib"` (DyGLib's: for TGN each event's own recent
            neighbours and TGAT attention; for TGN, JODIE and DyRep its
            sizes, negatives, split draw, zero features and time encoder
            initialisation). (default: :obj:`"pyg"`)
        epochs (int): Training epochs (at most, with :obj:`patience`).
            (default: :obj:`8`)
        patience (int, optional): Early stopping: stop after this many
            epochs without a better validation score (the first of
            :obj:`metrics`), then restore the best epoch's state and test it
            again. (default: :obj:`None`)
        runs (int): Runs, seeded :obj:`seed`, :obj:`seed + 1`, ...
            (default: :obj:`1`)
        batch_size (int): Events per batch. (default: :obj:`200`)
        lr (float): Adam learning rate. (default: :obj:`1e-4`)
        memory_dim (int, optional): Memory size; :obj:`None`: the recipe's
            (:obj:`100` for :obj:`"pyg"`, DyGLib's :obj:`172` for
            :obj:`"dyglib"`). (default: :obj:`None`)
        embedding_dim (int, optional): Embedding size; :obj:`None`: the
            recipe's (as :obj:`memory_dim`). (default: :obj:`None`)
        time_dim (int): Time encoding size. (default: :obj:`100`)
        neighbors (int): Sampled most recent neighbours. (default: :obj:`10`)
        device (str): Compute device. (default: :obj:`"cpu"`)
        seed (int): Seed of the model and the negatives. (default: :obj:`12345`)
        threads (int, optional): PyTorch's intra-op threads
            (:func:`torch.set_num_threads`; :obj:`None`: PyTorch's default).
            (default: :obj:`None`)
        staleness_bound (int, optional): Switches on the MSPipe pipeline.
            (default: :obj:`None`)
        schedule (str): :obj:`"online"` or :obj:`"fixed"`. (default: :obj:`"online"`)
        storage (str, optional): :obj:`"cpu"` keeps the memory in host memory.
            (default: :obj:`None`)
        val_ratio (float): Share of events for validation. (default: :obj:`0.15`)
        test_ratio (float): Share of events for testing. (default: :obj:`0.15`)
        split (str): :obj:`"transductive"` (PyG's) or :obj:`"inductive"`
            (new nodes kept out of training, as the TGN paper splits).
            (default: :obj:`"transductive"`)
        new_node_ratio (float): Nodes drawn as new ones (inductive split).
            (default: :obj:`0.1`)
        new_node_draw (str, optional): How the inductive split draws them:
            :obj:`"torch"` (seeded :obj:`eval_seed`) or :obj:`"dyglib"`
            (DyGLib's draw, Python's :obj:`random` seeded 2020: on data
            numbered as DyGLib's, e.g. CollegeMsg, the nodes DyGLib keeps
            out); :obj:`None`: the recipe's (:obj:`"torch"` for
            :obj:`"pyg"`, :obj:`"dyglib"` for :obj:`"dyglib"`).
            (default: :obj:`None`)
        negatives (str): :obj:`"pyg"` (the loader's, PyG's example),
            :obj:`"random"`, :obj:`"historical"` or :obj:`"inductive"`
            (DyGLib's). (default: :obj:`"pyg"`)
        num_negatives (int): Negatives per positive. (default: :obj:`1`)
        train_negatives (str): Training negatives' destinations:
            :obj:`"pyg"` (uniform over :obj:`[min(dst), max(dst)]` of the
            training events, PyG's example) or :obj:`"random"` (uniform over
            their distinct destinations, DyGLib's); :obj:`None`: the recipe's
            (:obj:`"pyg"` for :obj:`"pyg"`, :obj:`"random"` for
            :obj:`"dyglib"`). (default: :obj:`None`)
        metrics (tuple): Among :obj:`"ap"`, :obj:`"auc"`, :obj:`"mrr"`,
            :obj:`"hits@k"`; the first selects the best epoch (:obj:`tgb:<dir>`
            data: :obj:`"mrr"` and :obj:`"hits@k"` only; the command line
            then defaults to :obj:`("mrr", "hits@10")`).
            (default: :obj:`("ap", "auc")`)
        eval_seed (int): Seed of the negative samplers and of the new-node
            draw. (default: :obj:`0`)
        checkpoint_dir (Path, optional): Where checkpoints go. (default: :obj:`None`)
        checkpoint_every (int): Batches between mid-epoch checkpoints (:obj:`0`:
            at epoch ends only). (default: :obj:`50`)
        resume (bool): Continue from the checkpoint in :obj:`checkpoint_dir`.
            (default: :obj:`False`)
        json_path (Path, optional): Where the JSON summary goes. (default: :obj:`None`)
        plots_dir (Path, optional): Where the PNG plots go. (default: :obj:`None`)
    """
    data: str = "college"
    format: str | None = None
    msg_dim: int | None = None
    data_root: Path | None = None
    edge_features: str | None = None
    model: str = "tgn"
    recipe: str = "pyg"
    epochs: int = 8
    patience: int | None = None
    runs: int = 1
    batch_size: int = 200
    lr: float = 1e-4
    memory_dim: int | None = None
    embedding_dim: int | None = None
    time_dim: int = 100
    neighbors: int = 10
    device: str = "cpu"
    seed: int = 12345
    threads: int | None = None
    staleness_bound: int | None = None
    schedule: str = "online"
    storage: str | None = None
    val_ratio: float = 0.15
    test_ratio: float = 0.15
    split: str = "transductive"
    new_node_ratio: float = 0.1
    new_node_draw: str | None = None
    negatives: str = "pyg"
    num_negatives: int = 1
    train_negatives: str | None = None
    metrics: tuple = ("ap", "auc")
    eval_seed: int = 0
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 50
    resume: bool = False
    json_path: Path | None = None
    plots_dir: Path | None = None

    def __post_init__(self):
        # The recipe's sizes and training negatives where none are given
        # (resolved here, so the JSON summary and checkpoints hold them).
        # DyGLib's memory and embedding have the node feature size, which
        # it pads to 172 for data without node features.
        dyglib = self.recipe == "dyglib"
        if self.memory_dim is None:
            self.memory_dim = DYGLIB_DIM if dyglib else 100
        if self.embedding_dim is None:
            self.embedding_dim = DYGLIB_DIM if dyglib else 100
        if self.train_negatives is None:
            self.train_negatives = "random" if dyglib else "pyg"

    @property
    def data_features(self) -> str:
        r"""The edge features of data without them (:obj:`edge_features`, or
        the recipe's)."""
        if self.edge_features is not None:
            return self.edge_features
        return "zeros" if self.recipe == "dyglib" else "random"

    @property
    def split_draw(self) -> str:
        r"""How the inductive split draws its new nodes
        (:obj:`new_node_draw`, or the recipe's)."""
        if self.new_node_draw is not None:
            return self.new_node_draw
        return "dyglib" if self.recipe == "dyglib" else "torch"

    @property
    def pipelined(self) -> bool:
        r"""Whether the MSPipe pipeline runs (a staleness bound is given)."""
        return self.staleness_bound is not None

    def to_dict(self) -> dict:
        r"""The configuration as JSON-ready values (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}
