"""Validated, immutable configuration of one simulated task instance."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim_bridge.envs.conventions import DEFAULT_CONTROL_FREQ_HZ

_SIM_TIMESTEP_S = 0.002  # robosuite's physics step; control_freq must divide it evenly enough


@dataclass(frozen=True)
class EnvConfig:
    """Everything that changes what a ``PandaTaskEnv`` simulates or observes.

    Frozen so a config can be logged, hashed and shared between processes without surprises.

    Attributes:
        task: registry key, e.g. ``"lift"`` or ``"libero_object/3"`` (see ``list_tasks()``).
        camera_names: robosuite camera names rendered into ``obs["images"]``; an empty tuple
            disables image observations.
        image_size: (height, width) in pixels of every camera image.
        render: master switch for rendering; when False no GL context is created at all, there
            are no images and ``render()`` raises (fastest, for physics-only RL and CI).
        control_freq: policy steps per simulated second (Hz); each step holds the action for
            ``1 / control_freq`` s of physics.
        max_steps: episode length before ``truncated``; ``None`` uses the task's default.
        privileged_state: include ``obs["object_state"]`` (true object poses), for experts and
            asymmetric critics; a real robot cannot provide it.
        fast_render: disable shadows, reflections and multisampling (about 3x faster on CPU).
        seed: seed for the env's RNG when ``reset`` is called without one; ``None`` is random.
        settle_steps: zero-motion steps after loading a LIBERO init state so objects come to rest
            (the LIBERO evaluation protocol uses 10); not counted in ``max_steps``.
        render_camera: camera used by ``render()``; ``None`` picks the task's default view.
        render_size: (height, width) of ``render()`` frames.
    """

    task: str = "lift"
    camera_names: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")
    image_size: tuple[int, int] = (128, 128)
    render: bool = True
    control_freq: float = DEFAULT_CONTROL_FREQ_HZ
    max_steps: int | None = None
    privileged_state: bool = True
    fast_render: bool = True
    seed: int | None = None
    settle_steps: int = 10
    render_camera: str | None = None
    render_size: tuple[int, int] = (256, 256)

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"task must be a non-empty string, got {self.task!r}")
        if isinstance(self.camera_names, str) or not isinstance(self.camera_names, tuple):
            raise ValueError(f"camera_names must be a tuple of str, got {self.camera_names!r}")
        if not all(isinstance(c, str) and c for c in self.camera_names):
            raise ValueError(f"camera_names must be non-empty strings, got {self.camera_names!r}")
        if len(set(self.camera_names)) != len(self.camera_names):
            raise ValueError(f"camera_names must be unique, got {self.camera_names!r}")
        _check_size("image_size", self.image_size)
        _check_size("render_size", self.render_size)
        if not isinstance(self.render, bool):
            raise ValueError(f"render must be a bool, got {self.render!r}")
        freq = self.control_freq
        if not isinstance(freq, int | float) or not math.isfinite(freq) or freq <= 0:
            raise ValueError(f"control_freq must be a positive finite number, got {freq!r}")
        if freq > 1.0 / _SIM_TIMESTEP_S:
            raise ValueError(
                f"control_freq must be <= {1.0 / _SIM_TIMESTEP_S:g} Hz (physics rate), got {freq!r}"
            )
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int)
            or isinstance(self.max_steps, bool)
            or self.max_steps < 1
        ):
            raise ValueError(f"max_steps must be a positive int or None, got {self.max_steps!r}")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0
        ):
            raise ValueError(f"seed must be a non-negative int or None, got {self.seed!r}")
        if (
            not isinstance(self.settle_steps, int)
            or isinstance(self.settle_steps, bool)
            or self.settle_steps < 0
        ):
            raise ValueError(f"settle_steps must be a non-negative int, got {self.settle_steps!r}")
        if self.render_camera is not None and (
            not isinstance(self.render_camera, str) or not self.render_camera
        ):
            raise ValueError(
                f"render_camera must be a non-empty str or None, got {self.render_camera!r}"
            )

    @property
    def image_cameras(self) -> tuple[str, ...]:
        """Cameras that actually produce observations (none when rendering is off)."""
        return self.camera_names if self.render else ()


def _check_size(name: str, size: object) -> None:
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 4096 for v in size)
    ):
        raise ValueError(
            f"{name} must be a (height, width) tuple of ints in [8, 4096], got {size!r}"
        )
