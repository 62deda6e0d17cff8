"""Configuration of PLD stage 1: the residual actor, how it is combined with the base action,
and the SAC / RLPD / Cal-QL learner. Defaults follow the paper (see docs/RESIDUAL_RL.md) except
where a deviation is documented on the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pld_nodes.core.config import ConfigError, require_finite

ACTIVATIONS = ("tanh", "relu", "silu")


@dataclass(frozen=True)
class ResidualPolicyConfig:
    """The residual actor's inputs, architecture and output bound."""

    use_proprio: bool = True
    use_object_state: bool = True
    """Privileged object poses (sim only)."""
    image_keys: tuple[str, ...] = ()
    """Cameras the residual reads through its own small CNN; empty = state only."""
    image_size: tuple[int, ...] = (64, 64)
    """(height, width) the images are resized to before the CNN."""
    cnn_channels: tuple[int, ...] = (16, 32, 32)
    image_feature_dim: int = 64
    hidden_dim: int = 256
    num_layers: int = 3
    actor_activation: str = "tanh"
    """The paper uses tanh in the actor; critics always use ReLU. LayerNorm after every layer."""
    init_log_std: float = -1.0
    """Initial log std of the Gaussian before tanh (its layer starts at zero like the mean).
    Not stated in the paper."""
    log_std_min: float = -5.0
    log_std_max: float = -1.0
    """Upper bound of the log std (soft clamp). With the default init at this bound the
    exploration noise stays at std 0.37 before tanh (the clamp's gradient vanishes there), like
    the fixed exploration noise of TD3-style residual RL. Measured on Lift (same seed, 20
    validation episodes per point): bound 1.0 let the noise grow and success fell from 55 % to
    5 % within 4k online steps; init -2 (std 0.14) collapsed to 0 %; this setting rose
    steadily 55 -> 95 % in 20k online steps."""
    xi: float = 0.5
    """Residual scale: executed action = clip(a_base + xi * a_residual, -1, 1)."""

    def __post_init__(self) -> None:
        if not (self.use_proprio or self.use_object_state or self.image_keys):
            raise ConfigError("the residual needs at least one input (proprio/object/images)")
        if self.image_keys and (len(self.image_size) != 2 or min(self.image_size) < 16):
            raise ConfigError(f"image_size must be (height, width) >= 16, got {self.image_size}")
        if self.hidden_dim < 1 or self.num_layers < 1 or self.image_feature_dim < 1:
            raise ConfigError("hidden_dim, num_layers and image_feature_dim must be >= 1")
        if not self.cnn_channels or min(self.cnn_channels) < 1:
            raise ConfigError(f"cnn_channels must be positive, got {self.cnn_channels}")
        if self.actor_activation not in ACTIVATIONS:
            raise ConfigError(f"actor_activation must be one of {ACTIVATIONS}")
        require_finite("xi", self.xi, low=0.0, high=2.0, low_inclusive=False)
        require_finite("init_log_std", self.init_log_std, low=self.log_std_min)
        if not self.log_std_min < self.log_std_max or self.init_log_std > self.log_std_max:
            raise ConfigError("need log_std_min < log_std_max and init_log_std <= log_std_max")


@dataclass(frozen=True)
class SACConfig:
    """Off-policy learner: SAC with clipped double Q, RLPD sampling and a Cal-QL warm start."""

    batch_size: int = 256
    gamma: float = 0.99
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    weight_decay: float = 0.0
    """AdamW weight decay (the paper uses AdamW without stating the decay)."""
    grad_clip: float = 1.0
    tau: float = 0.005
    critic_hidden_dim: int = 256
    critic_layers: int = 3
    critic_actor_ratio: int = 2
    """Critic updates per actor (and temperature) update."""
    actor_delay_updates: int = 0
    """Online critic updates before the actor starts to learn, so the critic first sees the
    effect of exploratory actions instead of steering the actor with its offline guess."""
    actor_ema_tau: float = 0.002
    """> 0: evaluate and publish a Polyak average of the actor (this rate per actor update)
    instead of the latest actor; 0 = off. Measured on Lift (same seed and training data): the
    last 20k online steps validated at 0.95/1.0/1.0/1.0/0.9 with the average vs
    0.9/1.0/0.85/0.9/0.9 without, and 92 % vs 90 % on the 50 test episodes."""
    updates_per_step: int = 1
    """Critic updates per environment step (update-to-data ratio)."""
    init_temperature: float = 0.01
    """Deviation: the paper's (?) 1.0 lets the entropy bonus swamp a 0/1 reward for thousands of
    updates; 0.01 keeps early exploration near the base policy."""
    target_entropy: float = math.nan
    """NaN = -action_dim (the SAC default)."""
    backup_entropy: bool = False
    """Add the entropy bonus to the TD target (False keeps Q on the scale of the return, as in
    RLPD/SERL, so Cal-QL's Monte-Carlo calibration stays meaningful online)."""
    offline_fraction: float = 0.5
    """RLPD symmetric sampling: this share of each batch comes from the offline buffer."""
    buffer_capacity: int = 250_000
    calql_alpha: float = 0.1
    """Weight of the conservative (CQL) term during the offline warm start. Scaled for 0/1
    rewards (Q <= 1): measured on Lift base rollouts, 1.0 drove Q of the data actions to 3.0
    for Monte-Carlo returns of 0.8 within 1000 steps; 0.1 rose towards the returns with
    random actions kept far below."""
    calql_actions: int = 4
    """Sampled actions per state for the CQL log-sum-exp (random, pi(s), pi(s')). Cal-QL uses
    10; 4 costs 120 ms instead of 290 ms per batch-256 step on a CPU core."""
    calql_steps: int = 2000
    """Critic pretraining steps on the offline buffer before online RL (0 = none)."""
    online_calql_alpha: float = 0.0
    """CQL weight during online RL; 0 = plain SAC after the warm start (WSRL/PLD)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "critic_actor_ratio", "updates_per_step", "calql_actions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.buffer_capacity < self.batch_size:
            raise ConfigError("buffer_capacity must be >= batch_size")
        if self.calql_steps < 0 or self.actor_delay_updates < 0:
            raise ConfigError("calql_steps and actor_delay_updates must be >= 0")
        require_finite("gamma", self.gamma, low=0.0, high=1.0, low_inclusive=False)
        require_finite("tau", self.tau, low=0.0, high=1.0, low_inclusive=False)
        require_finite("offline_fraction", self.offline_fraction, low=0.0, high=1.0)
        for name in ("actor_lr", "critic_lr", "temperature_lr", "grad_clip", "init_temperature"):
            require_finite(name, getattr(self, name), low=0.0, low_inclusive=False)
        require_finite("actor_ema_tau", self.actor_ema_tau, low=0.0, high=1.0)
        for name in ("weight_decay", "calql_alpha", "online_calql_alpha"):
            require_finite(name, getattr(self, name), low=0.0)
        if not math.isnan(self.target_entropy) and not math.isfinite(self.target_entropy):
            raise ConfigError("target_entropy must be finite or NaN (= -action_dim)")


def xi_at(step: int, xi: float, start: float, ramp_steps: int) -> float:
    """Residual scale after ``step`` online env steps: a linear ramp from ``start`` to ``xi``
    over ``ramp_steps`` (0 = constant ``xi``). Small early, full later (Policy Decorator)."""
    if ramp_steps <= 0:
        return xi
    frac = min(max(step, 0) / ramp_steps, 1.0)
    return start + frac * (xi - start)
