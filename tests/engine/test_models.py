"""The model pieces equal PyG's examples/tgn.py ones."""
import torch

from pyg_mspipe import TimeEncoder
from pyg_mspipe.engine.models import GraphAttentionEmbedding, LinkPredictor


def test_embedding_and_predictor_shapes_and_reset():
    torch.manual_seed(0)
    gnn = GraphAttentionEmbedding(8, 6, msg_dim=3, time_enc=TimeEncoder(4))
    x = torch.randn(5, 8)
    edge_index = torch.tensor([[0, 1, 2], [3, 3, 4]])
    out = gnn(x, torch.zeros(5, dtype=torch.long), edge_index, torch.tensor([1, 2, 3]),
              torch.randn(3, 3))
    assert out.shape == (5, 6)
    pred = LinkPredictor(6)
    assert pred(out[:2], out[2:4]).shape == (2, 1)
    before = pred.lin_final.weight.clone()
    pred.reset_parameters()
    gnn.reset_parameters()
    assert not torch.equal(before, pred.lin_final.weight)
