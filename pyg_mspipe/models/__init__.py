r"""The model pieces of PyG's ``examples/tgn.py``."""
from pyg_mspipe.models.tgn import GraphAttentionEmbedding, LinkPredictor

__all__ = ["GraphAttentionEmbedding", "LinkPredictor"]
