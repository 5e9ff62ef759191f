"""The PyTorch references the benchmarks compare against: the same biLM, eager.

Same formulas as `bilm/` (fluid LSTMP gate layout, cell and projection
clipping, residual, dropout, sampled softmax with the log-Q correction and
accidental hits removed), written the way a torch user would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class TorchLSTMP(torch.nn.Module):
    def __init__(self, inp: int, hidden: int, proj: int, cell_clip: float, proj_clip: float):
        super().__init__()
        # x·W_x + b as one addmm (a separate bias add cost 30 % of the eval forward), and a Linear,
        # so torch's quantize_dynamic makes it int8.
        self.gate = torch.nn.Linear(inp, 4 * hidden)
        torch.nn.init.zeros_(self.gate.bias)
        self.weight = torch.nn.Parameter(torch.randn(proj, 4 * hidden) * 0.02)
        self.proj = torch.nn.Parameter(torch.randn(hidden, proj) * 0.02)
        self.hidden, self.cell_clip, self.proj_clip = hidden, cell_clip, proj_clip

    def forward(self, x, r, c):
        gates = self.gate(x)  # all steps at once
        outputs = []
        for t in range(x.shape[1]):
            z = torch.addmm(gates[:, t], r, self.weight)
            zc, zi, zf, zo = z.chunk(4, dim=-1)
            c = (torch.tanh(zc) * torch.sigmoid(zi) + c * torch.sigmoid(zf)).clamp(-self.cell_clip, self.cell_clip)
            r = ((torch.sigmoid(zo) * torch.tanh(c)) @ self.proj).clamp(-self.proj_clip, self.proj_clip)
            outputs.append(r)
        return torch.stack(outputs, 1), r, c


class TorchBiLM(torch.nn.Module):
    """`sparse=True`: the word table and the softmax rows get sparse gradients (what a torch user with a
    large vocabulary writes: `nn.Embedding(sparse=True)` and sparse row lookups, with Adagrad)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float = 0.1, clip: float = 3.0,
                 sparse: bool = False):
        super().__init__()
        self.sparse = sparse
        self.embedding = torch.nn.Embedding(vocab, embed, sparse=sparse)
        self.directions = torch.nn.ModuleList([
            torch.nn.ModuleList([TorchLSTMP(embed, hidden, embed, clip, clip) for _ in range(layers)])
            for _ in range(2)])
        self.softmax_weight = torch.nn.Parameter(torch.randn(vocab, embed) * 0.02)
        self.softmax_bias = torch.nn.Parameter(torch.zeros(vocab, 1))
        self.dropout, self.vocab, self.embed, self.hidden = dropout, vocab, embed, hidden

    def layers(self, ids, direction, training=True):
        x = self.embedding(ids)
        outs, inp = [], x
        for i, layer in enumerate(self.directions[direction]):
            a = F.dropout(inp, self.dropout, training)
            zeros_r = ids.new_zeros((ids.shape[0], self.embed), dtype=torch.float32)
            zeros_c = ids.new_zeros((ids.shape[0], self.hidden), dtype=torch.float32)
            r, _, _ = layer(F.dropout(a, self.dropout, training), zeros_r, zeros_c)
            out = r + a if i > 0 else r
            outs.append(out)
            inp = F.dropout(out, self.dropout, training)
        return x, outs, inp

    def sampled_loss(self, hidden, targets, neg_ids, num_tries):
        log_range = math.log(self.vocab + 1.0)

        def log_q(ids):
            p = torch.log((ids.float() + 2) / (ids.float() + 1)) / log_range
            return torch.log(-torch.expm1(num_tries * torch.log1p(-p)))

        def rows(table, ids):
            return F.embedding(ids, table, sparse=self.sparse)

        true = (hidden * rows(self.softmax_weight, targets)).sum(-1) + rows(self.softmax_bias, targets)[:, 0]
        true = true - log_q(targets)
        neg = hidden @ rows(self.softmax_weight, neg_ids).T + rows(self.softmax_bias, neg_ids)[:, 0] - log_q(neg_ids)
        neg = neg.masked_fill(targets[:, None] == neg_ids[None, :], -1e20)
        logits = torch.cat([true[:, None], neg], 1)
        return F.cross_entropy(logits, torch.zeros_like(targets))

    def loss(self, fw_ids, fw_targets, bw_ids, bw_targets, neg_ids, num_tries):
        total = 0.0
        for d, (ids, targets) in enumerate(((fw_ids, fw_targets), (bw_ids, bw_targets))):
            _, _, top = self.layers(ids, d)
            total = total + self.sampled_loss(top.reshape(-1, self.embed), targets.reshape(-1), neg_ids, num_tries)
        return total / 2


def clip_grad_norm(parameters, max_norm: float) -> None:
    """Global-norm clipping over dense and sparse gradients (torch's own skips sparse ones on some builds)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = [(g.coalesce().values() if g.is_sparse else g).norm() for g in grads]
    total = torch.stack(norms).norm()
    scale = max_norm / max(float(total), max_norm)
    for g in grads:
        g.mul_(scale)
