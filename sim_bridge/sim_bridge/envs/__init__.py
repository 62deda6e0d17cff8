"""ROS-free simulated Franka tasks (robosuite Lift, LIBERO) behind one Gymnasium interface.

Import cost is tiny: robosuite/LIBERO load only when an env is built.
"""

from sim_bridge.envs.config import EnvConfig
from sim_bridge.envs.conventions import (
    ACTION_DIM,
    ACTION_SCALE_SI,
    DEFAULT_CONTROL_FREQ_HZ,
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    MAX_DELTA_POS_M,
    MAX_DELTA_ROT_RAD,
    OBJECT_STATE_STRIDE,
    PROPRIO_DIM,
    PROPRIO_LAYOUT,
    normalised_to_si,
    si_to_normalised,
    validate_action,
)
from sim_bridge.envs.panda_env import PandaTaskEnv, make_env
from sim_bridge.envs.tasks import TASK_REGISTRY, TaskSpec, get_task_spec, list_tasks

__all__ = [
    "ACTION_DIM",
    "ACTION_SCALE_SI",
    "DEFAULT_CONTROL_FREQ_HZ",
    "GRIPPER_CLOSE",
    "GRIPPER_OPEN",
    "MAX_DELTA_POS_M",
    "MAX_DELTA_ROT_RAD",
    "OBJECT_STATE_STRIDE",
    "PROPRIO_DIM",
    "PROPRIO_LAYOUT",
    "TASK_REGISTRY",
    "EnvConfig",
    "PandaTaskEnv",
    "TaskSpec",
    "get_task_spec",
    "list_tasks",
    "make_env",
    "normalised_to_si",
    "si_to_normalised",
    "validate_action",
]
