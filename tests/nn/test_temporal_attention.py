import pytest
import torch

from pyg_mspipe.nn.temporal_attention import TemporalAttentionEmbedding
from pyg_mspipe.nn.time_encoder import TimeEncoder


def _reference(m, x, query, nbr, rel_t, msg, mask):
    # DyGLib's MultiHeadAttention + MergeLayer (models/modules.py), on dense
    # keys [memory | features | time], with the module's weights.
    q_num, k = mask.shape
    phi0 = m.time_enc(torch.zeros(q_num, dtype=x.dtype))
    q_in = torch.cat([x[query], phi0], -1)
    key = torch.cat([x[nbr], msg, m.time_enc(rel_t.reshape(-1)).view(q_num, k, -1)], -1)
    heads, dim = m.heads, q_in.size(-1) // m.heads
    q = m.lin_query(q_in).view(q_num, 1, heads, dim).permute(0, 2, 1, 3)
    kk = m.lin_key(key).view(q_num, k, heads, dim).permute(0, 2, 1, 3)
    v = m.lin_value(key).view(q_num, k, heads, dim).permute(0, 2, 1, 3)
    att = torch.einsum("bhld,bhnd->bhln", q, kk) * dim ** -0.5
    att = att.masked_fill(~mask.view(q_num, 1, 1, k), -1e10).softmax(-1)
    att = att * mask.any(-1).view(-1, 1, 1, 1)  # no neighbour: no attention term
    out = torch.einsum("bhln,bhnd->bhld", att, v).permute(0, 2, 1, 3).flatten(1)
    h = m.norm(m.lin_out(out) + q_in)
    return m.merge2(torch.relu(m.merge1(torch.cat([h, x[query]], -1))))


def test_equals_dense_reference():
    torch.manual_seed(0)
    m = TemporalAttentionEmbedding(6, 5, 3, TimeEncoder(4), heads=2, dropout=0.0).eval()
    x = torch.randn(9, 6)
    query = torch.tensor([0, 3, 3, 8])
    nbr = torch.randint(0, 9, (4, 5))
    rel_t = torch.rand(4, 5) * 10
    msg = torch.randn(4, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]],
                        dtype=torch.bool)
    out = m(x, query, nbr, rel_t, msg, mask)
    assert out.shape == (4, 5)
    torch.testing.assert_close(out, _reference(m, x, query, nbr, rel_t, msg, mask))
    # Masked slots do not matter.
    nbr2, msg2 = nbr.clone(), msg.clone()
    nbr2[~mask], msg2[~mask] = 0, 100.0
    torch.testing.assert_close(m(x, query, nbr2, rel_t, msg2, mask), out)


def test_gradients_equal_dense_reference():
    # The projections run per query instead of per slot: the same function,
    # so the same gradients (float64: to rounding).
    torch.manual_seed(1)
    m = TemporalAttentionEmbedding(6, 5, 3, TimeEncoder(4), heads=2, dropout=0.0).double()
    x = torch.randn(9, 6, dtype=torch.float64, requires_grad=True)
    query, nbr = torch.tensor([0, 3, 5, 8]), torch.randint(0, 9, (4, 5))
    rel_t = torch.rand(4, 5, dtype=torch.float64) * 10
    msg = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(4, 5) > 0.3
    w = torch.randn(4, 5, dtype=torch.float64)
    grads = []
    for fn in (m, lambda *a: _reference(m, *a)):
        m.zero_grad()
        x.grad = msg.grad = None
        (fn(x, query, nbr, rel_t, msg, mask) * w).sum().backward()
        grads.append([x.grad.clone(), msg.grad.clone()]
                     + [p.grad.clone() for p in m.parameters()])
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_heads_must_divide():
    with pytest.raises(ValueError, match="heads"):
        TemporalAttentionEmbedding(5, 5, 3, TimeEncoder(4), heads=2)


def _plain_attend(q_key, inputs, mask, scale, p, training):
    # The attention core as autograd would differentiate it.
    score = (q_key @ inputs.transpose(1, 2)) * scale
    score = score.masked_fill(~mask.view(mask.size(0), 1, -1), float("-inf"))
    alpha = torch.nan_to_num(score.softmax(-1), nan=0.0)
    return torch.nn.functional.dropout(alpha, p, training) @ inputs


@pytest.mark.parametrize("p,training", [(0.0, True), (0.3, True), (0.3, False)])
def test_attention_core_backward_equals_autograd(p, training):
    # The hand-written backward (dropout included, a query without
    # neighbours included) against autograd of the plain formula, same RNG.
    from pyg_mspipe.nn.temporal_attention import _Attend
    torch.manual_seed(2)
    q_key = torch.randn(5, 2, 7, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(5, 4, 7, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(5, 4) > 0.4
    mask[1] = False
    w = torch.randn(5, 2, 7, dtype=torch.float64)
    grads = []
    for fn in (_Attend.apply, _plain_attend):
        torch.manual_seed(3)
        q_key.grad = inputs.grad = None
        out = fn(q_key, inputs, mask, 0.5, p, training)
        (out * w).sum().backward()
        grads.append((out.detach(), q_key.grad, inputs.grad))
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if p == 0.0:
        assert torch.autograd.gradcheck(
            lambda a, b: _Attend.apply(a, b, mask, 0.5, p, training), (q_key, inputs))
