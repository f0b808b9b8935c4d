"""Slow, obviously-correct references of the memory models, written from
their equations with per-node and per-event Python loops (test use only).

They read the parameters of a module they are given (a deep copy of the
one under test, so that gradients can be compared) and keep their state in
Python lists."""
import torch
import torch.nn.functional as F


def time_encoding(time_enc, dt):
    """phi(dt) = cos(w dt + b)."""
    return torch.cos(time_enc.lin.weight[:, 0] * dt + time_enc.lin.bias)


def rnn_cell(cell, x, h):
    """s' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    return torch.tanh(cell.weight_ih @ x + cell.bias_ih + cell.weight_hh @ h + cell.bias_hh)


def time_projection(proj, s, last_update, t):
    """JODIE: s(t) = (1 + w * (t - t^-) / (t + 1)) * s."""
    delta = (t - last_update) / (t + 1)
    return s * (1 + proj.lin.weight[:, 0] * delta + proj.lin.bias)


def graph_attention(emb, x, last_update, edge_index, t, msg):
    """PyG's TransformerConv as GraphAttentionEmbedding configures it, node by
    node and edge by edge: per head, z_i = sum_j softmax_j(q_i . k_ij /
    sqrt(C)) v_ij + W_skip x_i, with q_i = W_q x_i, k_ij = W_k x_j + W_e a_ij,
    v_ij = W_v x_j + W_e a_ij and a_ij = [phi(t_j^- - t_ij), e_ij]."""
    conv = emb.conv
    heads, c = conv.heads, conv.out_channels
    out = []
    for i in range(x.size(0)):
        q = (conv.lin_query.weight @ x[i] + conv.lin_query.bias).view(heads, c)
        keys, values = [], []
        for e in range(edge_index.size(1)):
            if int(edge_index[1, e]) != i:
                continue
            j = int(edge_index[0, e])
            a = torch.cat([time_encoding(emb.time_enc, float(last_update[j] - t[e])), msg[e]])
            w_e = (conv.lin_edge.weight @ a).view(heads, c)
            keys.append((conv.lin_key.weight @ x[j] + conv.lin_key.bias).view(heads, c) + w_e)
            values.append((conv.lin_value.weight @ x[j] + conv.lin_value.bias).view(heads, c)
                          + w_e)
        z = torch.zeros(heads, c, dtype=x.dtype)
        for h in range(heads):
            if keys:
                att = torch.softmax(torch.stack([(q[h] * k[h]).sum() / c ** 0.5
                                                 for k in keys]), 0)
                z[h] = sum(a * v[h] for a, v in zip(att, values))
        out.append(z.view(-1) + conv.lin_skip.weight @ x[i] + conv.lin_skip.bias)
    return torch.stack(out)


class RefRNNMemory:
    """The TGN-framework memory with an RNN updater (JODIE; DyRep with
    `embedding_dim`), as PyG's TGNMemory stores messages: per node one list
    of pending messages as a source and one as a destination, each replaced
    when the node is a source (destination) of a new batch; the update keeps
    the message with the largest time (the first on ties, sources first).

    DyRep: per node a list of its `num_neighbors` most recent edges
    (neighbour, time, features); the structural embedding of every endpoint
    is graph_attention over its recent edges before the batch, from the
    memory before the batch (after its pending messages in training, as it
    is in evaluation), detached. Evaluation (`training=False`) stores the
    messages first and then updates the batch's nodes, as PyG does."""

    def __init__(self, mem, num_nodes, embedding_dim=None, num_neighbors=None):
        self.m = mem
        self.dyrep = embedding_dim is not None
        self.k = num_neighbors
        self.edges = [[] for _ in range(num_nodes)]  # (neighbour, t, raw), oldest first
        d = mem.memory_dim
        dtype = mem.time_enc.lin.weight.dtype
        self.s = [torch.zeros(d, dtype=dtype) for _ in range(num_nodes)]
        self.lu = [0] * num_nodes
        self.pend_s = [[] for _ in range(num_nodes)]
        self.pend_d = [[] for _ in range(num_nodes)]

    def updated(self, v):
        msgs = self.pend_s[v] + self.pend_d[v]
        if not msgs:
            x = torch.zeros(self.m.gru.weight_ih.size(1), dtype=self.s[v].dtype)
            return rnn_cell(self.m.gru, x, self.s[v]), 0
        best = msgs[0]
        for msg in msgs[1:]:
            if msg[0] > best[0]:
                best = msg
        t, other, raw, emb_other = best
        phi = time_encoding(self.m.time_enc, float(t - self.lu[v]))
        z_other = emb_other if self.dyrep else self.s[other]
        x = torch.cat([self.s[v], z_other, raw, phi])
        return rnn_cell(self.m.gru, x, self.s[v]), t

    def forward(self, n_id):
        rows = [self.updated(v) for v in n_id.tolist()]
        return torch.stack([r[0] for r in rows]), torch.tensor([r[1] for r in rows])

    def neighborhood(self, nodes):
        """The recent edges of `nodes` as (n_id, edge_index, t, msg)."""
        pairs = [(v, e) for v in nodes for e in self.edges[v]]
        n_id = sorted(set(nodes) | {e[0] for _, e in pairs})
        pos = {v: k for k, v in enumerate(n_id)}
        edge_index = torch.tensor([[pos[e[0]] for _, e in pairs], [pos[v] for v, _ in pairs]],
                                  dtype=torch.long).view(2, -1)
        t = torch.tensor([e[1] for _, e in pairs], dtype=torch.long)
        msg = torch.stack([e[2] for _, e in pairs]) if pairs \
            else torch.zeros(0, self.m.raw_msg_dim)
        return torch.tensor(n_id), edge_index, t, msg

    def structural(self, nodes, training):
        """Node id -> structural embedding of each node of `nodes`."""
        n_id, edge_index, t_e, msg_e = self.neighborhood(nodes)
        if training:
            rows = [self.updated(v) for v in n_id.tolist()]
        else:
            rows = [(self.s[v], self.lu[v]) for v in n_id.tolist()]
        x = torch.stack([r[0] for r in rows]).detach()
        lu = torch.tensor([r[1] for r in rows])
        h = graph_attention(self.m.structural, x, lu, edge_index, t_e, msg_e.to(x.dtype))
        return {v: h[k].detach() for k, v in enumerate(n_id.tolist())}

    def update_state(self, src, dst, t, raw, training=True):
        nodes = sorted(set(src.tolist()) | set(dst.tolist()))
        emb = self.structural(nodes, training) if self.dyrep else None
        if training:
            new = {v: self.updated(v) for v in nodes}
        for v in set(src.tolist()):
            self.pend_s[v] = []
        for v in set(dst.tolist()):
            self.pend_d[v] = []
        for i in range(src.numel()):
            a, b = int(src[i]), int(dst[i])
            e_a, e_b = (emb[a], emb[b]) if self.dyrep else (None, None)
            self.pend_s[a].append((int(t[i]), b, raw[i], e_b))
            self.pend_d[b].append((int(t[i]), a, raw[i], e_a))
        if not training:
            new = {v: self.updated(v) for v in nodes}
        for v, (s, lu) in new.items():
            self.s[v], self.lu[v] = s, lu
        if self.dyrep:
            for i in range(src.numel()):
                a, b = int(src[i]), int(dst[i])
                self.edges[a] = (self.edges[a] + [(b, int(t[i]), raw[i])])[-self.k:]
                self.edges[b] = (self.edges[b] + [(a, int(t[i]), raw[i])])[-self.k:]

    def flush(self):
        """Leaving training mode: every node updated, the messages forgotten."""
        new = [self.updated(v) for v in range(len(self.s))]
        self.s, self.lu = [r[0] for r in new], [r[1] for r in new]
        self.pend_s = [[] for _ in self.s]
        self.pend_d = [[] for _ in self.s]

    def detach(self):
        self.s = [s.detach() for s in self.s]


class RefAPANMemory:
    """APAN: per node a list of its k most recent mails and of its most
    recent neighbours; attention over the mails (per head, per node)."""

    def __init__(self, mem, num_nodes):
        self.m = mem
        d = mem.memory_dim
        dtype = mem.time_enc.lin.weight.dtype
        self.s = [torch.zeros(d, dtype=dtype) for _ in range(num_nodes)]
        self.lu = [0] * num_nodes
        self.mails = [[] for _ in range(num_nodes)]  # (mail, t), oldest first
        self.nbrs = [[] for _ in range(num_nodes)]  # (e_id, neighbour)
        self.e = 0

    def updated(self, v):
        mails = self.mails[v]
        if not mails:
            return self.s[v], self.lu[v]
        up = self.m.updater
        h = up.num_heads
        newest = max(t for _, t in mails)
        s = self.s[v]
        q = (up.w_q.weight @ s + up.w_q.bias).view(h, -1)
        keys, values = [], []
        for mail, t in mails:
            x = torch.cat([mail, time_encoding(self.m.time_enc, float(newest - t))])
            keys.append((up.w_k.weight @ x + up.w_k.bias).view(h, -1))
            values.append((up.w_v.weight @ x + up.w_v.bias).view(h, -1))
        out = []
        for head in range(h):
            scores = torch.stack([F.leaky_relu((q[head] * k[head]).sum(), 0.2) for k in keys])
            att = torch.softmax(scores, 0)
            out.append(sum(a * val[head] for a, val in zip(att, values)))
        y = torch.cat(out) + s
        y = F.layer_norm(y, (y.numel(),), up.layer_norm.weight, up.layer_norm.bias,
                         up.layer_norm.eps)
        return torch.relu(up.mlp.weight @ y + up.mlp.bias), newest

    def forward(self, n_id):
        rows = [self.updated(v) for v in n_id.tolist()]
        return torch.stack([r[0] for r in rows]), torch.tensor([r[1] for r in rows])

    def update_state(self, src, dst, t, raw):
        k, size = self.m.mailbox_size, self.m.num_neighbors
        nodes = sorted(set(src.tolist()) | set(dst.tolist()))
        new_rows = {v: self.updated(v) for v in nodes}
        new = {v: row[0] for v, row in new_rows.items()}
        best = {}  # receiver -> (key, mail, t)

        def offer(r, key, mail, time):
            if r not in best or key > best[r][0]:
                best[r] = (key, mail, time)

        for i in range(src.numel()):
            a, b = int(src[i]), int(dst[i])
            mail_a = torch.cat([new[a].detach(), new[b].detach(), raw[i]])
            mail_b = torch.cat([new[b].detach(), new[a].detach(), raw[i]])
            offer(a, 4 * i + 2, mail_a, int(t[i]))
            offer(b, 4 * i + 3, mail_b, int(t[i]))
            for _, w in self.nbrs[a]:
                offer(w, 4 * i + 0, mail_a, int(t[i]))
            for _, w in self.nbrs[b]:
                offer(w, 4 * i + 1, mail_b, int(t[i]))
        for r, (_, mail, time) in best.items():
            self.mails[r] = (self.mails[r] + [(mail, time)])[-k:]
        for v in nodes:
            self.s[v], self.lu[v] = new_rows[v]
        for i in range(src.numel()):
            a, b = int(src[i]), int(dst[i])
            self.nbrs[a].append((self.e + i, b))
            self.nbrs[b].append((self.e + i, a))
        self.e += src.numel()
        for v in range(len(self.nbrs)):
            self.nbrs[v] = sorted(self.nbrs[v])[-size:]

    def detach(self):
        self.s = [s.detach() for s in self.s]
