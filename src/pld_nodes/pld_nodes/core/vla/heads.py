"""Action heads of the built-in VLA: conditional flow matching and autoregressive bins.

Both map a fused observation context (B, C) to an action chunk (B, H, A) in [-1, 1] and own
their SFT loss, so the trainer and the exporters never branch on the head type.

Flow convention (rectified flow): ``x_t = t * a + (1 - t) * eps`` with ``t = 0`` pure noise and
``t = 1`` data; the network predicts the velocity ``v(x_t, t | ctx) ~ a - eps`` and inference
integrates ``dx/dt = v`` from t = 0 to 1 with ``flow_steps`` Euler steps. pi0 writes the same
path with t reversed (``x_t = t * eps + (1 - t) * a``, integrating from 1 to 0); substituting
t -> 1 - t maps one convention onto the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_TIME_DIM = 32


def _time_embedding(t: torch.Tensor, dim: int = _TIME_DIM) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1], shape (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=t.dtype, device=t.device) * (-math.log(1e3) / half))
    angles = (t * 1e3).unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.silu(self.fc1(self.norm(x))))


class FlowHead(nn.Module):
    """Velocity MLP over the flattened chunk, conditioned on time and context by concatenation."""

    def __init__(
        self, context_dim: int, horizon: int, action_dim: int, hidden: int, layers: int, steps: int
    ) -> None:
        super().__init__()
        self.horizon, self.action_dim, self.steps = horizon, action_dim, steps
        size = horizon * action_dim
        self.inp = nn.Linear(size + _TIME_DIM + context_dim, hidden)
        self.blocks = nn.Sequential(*[_ResBlock(hidden) for _ in range(layers)])
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, size))

    def velocity(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """v(x_t, t | ctx): (B, H, A), (B,), (B, C) -> (B, H, A)."""
        feats = torch.cat([x.flatten(1), _time_embedding(t), context], dim=-1)
        return self.out(self.blocks(F.silu(self.inp(feats)))).view_as(x)

    def loss(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Masked MSE between predicted and target velocity (a - eps) at uniform t."""
        b = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator, dtype=actions.dtype)
        t = torch.rand((b,), generator=generator, dtype=actions.dtype)
        noise, t = noise.to(actions.device), t.to(actions.device)
        x_t = t.view(b, 1, 1) * actions + (1 - t.view(b, 1, 1)) * noise
        err = (self.velocity(x_t, t, context) - (actions - noise)).square().mean(dim=-1)
        return (err * mask).sum() / mask.sum().clamp(min=1.0)

    def sample(self, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Euler-integrate from ``noise`` (t=0) to an action chunk (t=1), clipped to [-1, 1]."""
        x, dt = noise, 1.0 / self.steps
        for i in range(self.steps):
            t = torch.full((x.shape[0],), i * dt, dtype=x.dtype, device=x.device)
            x = x + dt * self.velocity(x, t, context)
        return x.clamp(-1.0, 1.0)


def actions_to_bins(actions: torch.Tensor, bins: int) -> torch.Tensor:
    """Uniform bins over [-1, 1] (OpenVLA): bin i covers [-1 + i*w, -1 + (i+1)*w), w = 2/bins."""
    idx = torch.floor((actions.clamp(-1.0, 1.0) + 1.0) * (bins / 2.0)).long()
    return idx.clamp(0, bins - 1)


def bins_to_actions(tokens: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin centres; the round trip error is at most half a bin width (1 / bins)."""
    return -1.0 + (tokens.to(torch.float32) + 0.5) * (2.0 / bins)


class ARHead(nn.Module):
    """GRU decoder over the H*A action tokens in time-major order (t0 dims 0..A-1, t1, ...).

    Each step sees the previous token, its position and the context; the initial state is a
    projection of the context. Training uses ``nn.GRU`` (teacher forcing); decoding runs the
    same weights one step at a time so the greedy loop unrolls into a static ONNX graph.
    """

    def __init__(
        self, context_dim: int, horizon: int, action_dim: int, hidden: int, bins: int
    ) -> None:
        super().__init__()
        self.horizon, self.action_dim, self.bins = horizon, action_dim, bins
        self.seq_len = horizon * action_dim
        self.bos = bins
        self.tok_emb = nn.Embedding(bins + 1, hidden)
        self.pos_emb = nn.Embedding(self.seq_len, hidden)
        self.ctx_in = nn.Linear(context_dim, hidden)
        self.h0 = nn.Linear(context_dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, bins))

    def _inputs(self, prev: torch.Tensor, pos: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self.tok_emb(prev) + self.pos_emb(pos) + ctx

    def loss(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Masked token cross-entropy with teacher forcing."""
        del generator  # deterministic loss
        b = actions.shape[0]
        targets = actions_to_bins(actions, self.bins).flatten(1)  # (B, S)
        bos = torch.full((b, 1), self.bos, dtype=torch.long, device=actions.device)
        prev = torch.cat([bos, targets[:, :-1]], dim=1)
        pos = torch.arange(self.seq_len, device=actions.device).expand(b, -1)
        x = self._inputs(prev, pos, self.ctx_in(context).unsqueeze(1))
        h, _ = self.gru(x, torch.tanh(self.h0(context)).unsqueeze(0))
        logits = self.out(h)
        ce = F.cross_entropy(logits.reshape(-1, self.bins), targets.reshape(-1), reduction="none")
        weights = mask.repeat_interleave(self.action_dim, dim=1).reshape(-1)
        return (ce * weights).sum() / weights.sum().clamp(min=1.0)

    def _step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step with ``nn.GRU``'s weights and gate equations (export-friendly)."""
        gi = F.linear(x, self.gru.weight_ih_l0, self.gru.bias_ih_l0)
        gh = F.linear(h, self.gru.weight_hh_l0, self.gru.bias_hh_l0)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h

    def sample(
        self,
        context: torch.Tensor,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode a chunk: greedy when ``temperature == 0``, else sampled with ``generator``."""
        b = context.shape[0]
        ctx = self.ctx_in(context)
        h = torch.tanh(self.h0(context))
        prev = torch.full((b,), self.bos, dtype=torch.long, device=context.device)
        tokens = []
        for s in range(self.seq_len):
            h = self._step(self.tok_emb(prev) + self.pos_emb.weight[s] + ctx, h)
            logits = self.out(h)
            if temperature > 0.0:
                probs = torch.softmax(logits / temperature, dim=-1)
                prev = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1)
                prev = prev.to(context.device)
            else:
                prev = logits.argmax(dim=-1)
            tokens.append(prev)
        seq = torch.stack(tokens, dim=1).view(b, self.horizon, self.action_dim)
        return bins_to_actions(seq, self.bins)
