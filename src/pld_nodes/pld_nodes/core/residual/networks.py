"""Residual actor and twin critics (torch).

Inputs are raw observations: a flat ``state`` vector (proprio and/or privileged object state,
in the order of :class:`ObservationLayout`) and optional uint8 images. Normalisation statistics
live inside the modules as buffers, so saved weights carry them and the residual node needs
nothing else to run the actor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pld_nodes.core.residual.config import ResidualPolicyConfig

_ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}
STATE_STD_FLOOR = 1e-3
STATE_CLAMP = 10.0


@dataclass(frozen=True)
class ObservationLayout:
    """Sizes of the residual's inputs, fixed when a learner starts and saved with the weights."""

    state_dim: int
    action_dim: int = 7
    image_keys: tuple[str, ...] = ()
    image_size: tuple[int, int] = (64, 64)

    def __post_init__(self) -> None:
        if self.state_dim < 0 or self.action_dim < 1:
            raise ValueError(f"bad layout: state_dim {self.state_dim}, action {self.action_dim}")
        if self.state_dim == 0 and not self.image_keys:
            raise ValueError("layout has neither state nor images")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ObservationLayout:
        return cls(
            state_dim=int(data["state_dim"]),
            action_dim=int(data["action_dim"]),
            image_keys=tuple(data["image_keys"]),
            image_size=tuple(data["image_size"]),  # type: ignore[arg-type]
        )


class ConvEncoder(nn.Module):
    """Small stride-2 CNN + global average pool; one per network, shared by its cameras."""

    def __init__(self, channels: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(c_in, out_dim), nn.LayerNorm(out_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, out_dim)."""
        x = images.permute(0, 3, 1, 2).to(torch.float32) * (2.0 / 255.0) - 1.0
        return self.proj(self.convs(x).mean(dim=(2, 3)))


class ObservationEncoder(nn.Module):
    """Normalised state (clamped) concatenated with per-camera CNN features."""

    def __init__(self, layout: ObservationLayout, config: ResidualPolicyConfig) -> None:
        super().__init__()
        self.layout = layout
        self.register_buffer("state_mean", torch.zeros(layout.state_dim))
        self.register_buffer("state_std", torch.ones(layout.state_dim))
        self.cnn = (
            ConvEncoder(config.cnn_channels, config.image_feature_dim)
            if layout.image_keys
            else None
        )
        self.out_dim = layout.state_dim + len(layout.image_keys) * config.image_feature_dim

    def set_state_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        with torch.no_grad():
            self.state_mean.copy_(mean)
            self.state_std.copy_(std.clamp(min=STATE_STD_FLOOR))

    def forward(self, state: torch.Tensor, images: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.layout.state_dim:
            z = (state - self.state_mean) / self.state_std
            parts.append(z.clamp(-STATE_CLAMP, STATE_CLAMP))
        if self.cnn is not None:
            parts += [self.cnn(images[k]) for k in self.layout.image_keys]
        return torch.cat(parts, dim=-1)


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, activation: str) -> nn.Sequential:
    """``layers`` hidden Linear -> LayerNorm -> activation blocks, then a Linear output."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers):
        mods += [nn.Linear(dim, hidden), nn.LayerNorm(hidden), _ACT[activation]()]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


class ResidualActor(nn.Module):
    """pi_delta(. | obs, a_base): tanh-squashed Gaussian over the residual in [-1, 1]^A.

    The output layer starts at zero (mean 0, log std = ``init_log_std``), so the deterministic
    residual is exactly 0 and the executed action equals the base action until it learns.
    """

    def __init__(self, layout: ObservationLayout, config: ResidualPolicyConfig) -> None:
        super().__init__()
        self.layout, self.config = layout, config
        self.encoder = ObservationEncoder(layout, config)
        a = layout.action_dim
        self.trunk = mlp(
            self.encoder.out_dim + a,
            config.hidden_dim,
            config.num_layers,
            2 * a,
            config.actor_activation,
        )
        last = self.trunk[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.zero_()
            last.bias[a:] = _raw_log_std(config.init_log_std, config)

    def distribution_params(
        self, state: torch.Tensor, images: dict[str, torch.Tensor], base: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.trunk(torch.cat([self.encoder(state, images), base], dim=-1))
        mean, log_std = out.chunk(2, dim=-1)
        c = self.config
        # soft clamp keeps gradients alive at the bounds
        log_std = c.log_std_min + 0.5 * (c.log_std_max - c.log_std_min) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def forward(
        self,
        state: torch.Tensor,
        images: dict[str, torch.Tensor],
        base: torch.Tensor,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(residual in [-1, 1], log-probability of it); log-prob is 0 when deterministic."""
        mean, log_std = self.distribution_params(state, images, base)
        if deterministic:
            return torch.tanh(mean), torch.zeros(mean.shape[0], device=mean.device)
        std = log_std.exp()
        eps = torch.randn_like(mean)
        pre = mean + std * eps
        # log N(pre; mean, std) minus the tanh Jacobian, in the numerically stable form
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2.0) - pre - nn.functional.softplus(-2 * pre))).sum(-1)
        return torch.tanh(pre), log_prob


def _raw_log_std(log_std: float, config: ResidualPolicyConfig) -> float:
    """Inverse of the soft clamp in :meth:`ResidualActor.distribution_params`."""
    lo, hi = config.log_std_min, config.log_std_max
    unit = min(max(2.0 * (log_std - lo) / (hi - lo) - 1.0, -0.999999), 0.999999)
    return math.atanh(unit)


class Critic(nn.Module):
    """Q(obs, a_base, a_executed) for an ensemble of ``n`` heads (clipped double Q: n = 2)."""

    def __init__(
        self,
        layout: ObservationLayout,
        policy_config: ResidualPolicyConfig,
        hidden: int,
        layers: int,
        n: int = 2,
    ) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(layout, policy_config)
        in_dim = self.encoder.out_dim + 2 * layout.action_dim
        self.heads = nn.ModuleList(mlp(in_dim, hidden, layers, 1, "relu") for _ in range(n))

    def forward(
        self,
        state: torch.Tensor,
        images: dict[str, torch.Tensor],
        base: torch.Tensor,
        action: torch.Tensor,
    ) -> torch.Tensor:
        """(n, B) Q-values."""
        x = torch.cat([self.encoder(state, images), base, action], dim=-1)
        return torch.stack([h(x).squeeze(-1) for h in self.heads])


def executed_action(base: torch.Tensor, residual: torch.Tensor, xi: float) -> torch.Tensor:
    """The action sent to the robot: ``clip(a_base + xi * a_residual, -1, 1)``."""
    return (base + xi * residual).clamp(-1.0, 1.0)
