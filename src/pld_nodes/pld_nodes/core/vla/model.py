"""The built-in VLA: small encoders for proprio, language, cameras and object state, fused
into one context vector that conditions a flow-matching or autoregressive action head.

It stands in for pi0/OpenVLA in sim, CI and benchmarks: the same inputs and chunked outputs,
small enough to train and run on a CPU. Raw observations go in (uint8 images, unnormalised
proprio); normalisation lives inside as buffers so torch, checkpoints and ONNX agree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pld_nodes.core.vla.config import NormStats, VLAConfig
from pld_nodes.core.vla.heads import ARHead, FlowHead
from pld_nodes.core.vla.text import PAD_ID, TokenizerConfig

__all__ = ["BuiltinVLA", "ImageEncoder", "NormStats", "TextEncoder", "VLAConfig"]

NORM_CLAMP = 10.0
"""Normalised proprio/object state is clamped to +-this, so an unseen pose cannot explode."""


class TextEncoder(nn.Module):
    """Embedding bag (masked mean of id embeddings): order-free, cheap and ONNX-friendly.

    ``nn.EmbeddingBag`` is avoided because a plain embedding plus a masked mean exports to
    every ONNX opset and runtime without special kernels.
    """

    def __init__(self, config: TokenizerConfig, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.num_buckets + 1, dim, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, std=0.1)
        with torch.no_grad():
            self.embed.weight[PAD_ID].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, dim); an all-padding row gives a zero vector."""
        mask = (tokens != PAD_ID).unsqueeze(-1).to(self.embed.weight.dtype)
        summed = (self.embed(tokens) * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1.0)


class ImageEncoder(nn.Module):
    """Stride-2 conv stack + global average pool; shared by all cameras (uint8 in)."""

    def __init__(self, channels: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), nn.GroupNorm(8, c_out)]
            layers.append(nn.ReLU())
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, out_dim); pixels mapped to [-1, 1] here."""
        x = images.permute(0, 3, 1, 2).to(torch.float32) * (2.0 / 255.0) - 1.0
        return self.proj(self.convs(x).mean(dim=(2, 3)))


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers += [nn.LayerNorm(dims[i + 1]), nn.SiLU()]
    return nn.Sequential(*layers)


class BuiltinVLA(nn.Module):
    """Observation -> action chunk (B, H, A) in [-1, 1]; ``loss`` is the head's own SFT loss."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("proprio_mean", torch.zeros(c.proprio_dim))
        self.register_buffer("proprio_std", torch.ones(c.proprio_dim))
        self.register_buffer("object_mean", torch.zeros(c.object_state_dim))
        self.register_buffer("object_std", torch.ones(c.object_state_dim))
        self.proprio_enc = nn.Linear(c.proprio_dim, c.hidden_dim)
        self.text_enc = TextEncoder(c.text, c.text_dim)
        self.text_proj = nn.Linear(c.text_dim, c.hidden_dim)
        self.object_enc = (
            nn.Linear(c.object_state_dim, c.hidden_dim) if c.use_object_state else None
        )
        self.image_enc = ImageEncoder(c.cnn_channels, c.hidden_dim) if c.image_keys else None
        self.camera_emb = nn.Parameter(torch.zeros(len(c.image_keys), c.hidden_dim))
        n_feats = 2 + int(c.use_object_state) + len(c.image_keys)
        self.fuse = _mlp([n_feats * c.hidden_dim] + [c.hidden_dim] * (c.context_layers + 1))
        self.head: FlowHead | ARHead
        if c.head == "flow":
            self.head = FlowHead(
                c.hidden_dim, c.horizon, c.action_dim, c.flow_hidden, c.flow_layers, c.flow_steps
            )
        else:
            self.head = ARHead(c.hidden_dim, c.horizon, c.action_dim, c.ar_hidden, c.ar_bins)

    # ------------------------------------------------------------------ normalisation
    def set_normalization(self, stats: NormStats) -> None:
        """Copy training-data statistics into the buffers (saved with the weights)."""
        self.proprio_mean.copy_(torch.as_tensor(stats.proprio_mean, dtype=torch.float32))
        self.proprio_std.copy_(torch.as_tensor(stats.proprio_std, dtype=torch.float32))
        if self.config.use_object_state:
            if stats.object_mean is None or stats.object_std is None:
                raise ValueError("config uses object state but NormStats has no object stats")
            self.object_mean.copy_(torch.as_tensor(stats.object_mean, dtype=torch.float32))
            self.object_std.copy_(torch.as_tensor(stats.object_std, dtype=torch.float32))

    def normalization(self) -> NormStats:
        """The stored statistics as numpy arrays."""
        obj = self.config.use_object_state
        return NormStats(
            self.proprio_mean.cpu().numpy().copy(),
            self.proprio_std.cpu().numpy().copy(),
            self.object_mean.cpu().numpy().copy() if obj else None,
            self.object_std.cpu().numpy().copy() if obj else None,
        )

    # ------------------------------------------------------------------ forward
    def encode(
        self,
        proprio: torch.Tensor,
        tokens: torch.Tensor,
        object_state: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Fused context (B, hidden_dim) from raw (unnormalised) inputs."""
        c = self.config
        p = ((proprio - self.proprio_mean) / self.proprio_std).clamp(-NORM_CLAMP, NORM_CLAMP)
        feats = [F.silu(self.proprio_enc(p)), F.silu(self.text_proj(self.text_enc(tokens)))]
        if self.object_enc is not None:
            if object_state is None:
                raise ValueError("this model reads object_state but none was given")
            o = (object_state - self.object_mean) / self.object_std
            feats.append(F.silu(self.object_enc(o.clamp(-NORM_CLAMP, NORM_CLAMP))))
        if self.image_enc is not None:
            images = images or {}
            missing = [k for k in c.image_keys if k not in images]
            if missing:
                raise ValueError(f"missing images {missing}; model reads {list(c.image_keys)}")
            b = proprio.shape[0]
            stacked = torch.cat([images[k] for k in c.image_keys], dim=0)  # (n_cam * B, H, W, 3)
            emb = self.image_enc(stacked).view(len(c.image_keys), b, -1)
            emb = F.silu(emb + self.camera_emb.unsqueeze(1))
            feats.extend(emb.unbind(0))
        return self.fuse(torch.cat(feats, dim=-1))

    def loss(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """SFT loss for a collated batch (keys as produced by ``EpisodeDataset.collate``)."""
        images = {k: batch[f"image/{k}"] for k in self.config.image_keys}
        ctx = self.encode(batch["proprio"], batch["tokens"], batch.get("object_state"), images)
        return self.head.loss(ctx, batch["actions"], batch["mask"], generator)

    @torch.no_grad()
    def sample(
        self,
        proprio: torch.Tensor,
        tokens: torch.Tensor,
        object_state: torch.Tensor | None = None,
        images: Mapping[str, torch.Tensor] | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Action chunk (B, H, A) in [-1, 1].

        Flow head: ``noise`` (B, H, A) is the t=0 sample; drawn from ``generator`` if None.
        AR head: greedy decoding; ``noise`` and ``generator`` are ignored.
        """
        ctx = self.encode(proprio, tokens, object_state, images)
        if isinstance(self.head, FlowHead):
            if noise is None:
                shape = (proprio.shape[0], self.config.horizon, self.config.action_dim)
                noise = torch.randn(shape, generator=generator).to(proprio.device)
            return self.head.sample(ctx, noise)
        return self.head.sample(ctx)

    def num_parameters(self) -> int:
        """Trainable parameter count (for logs and checkpoint metadata)."""
        return sum(int(np.prod(p.shape)) for p in self.parameters() if p.requires_grad)
