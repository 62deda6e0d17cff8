"""residual_node: the residual actor a_delta(obs, a_b) for every control step, hot-swappable.

Pairs each base action (/policy/base/action) with the observation of the same stamp
(``RobotObserver``), publishes a_delta on /policy/residual/action with that stamp and the
weights version, and installs new weights from /learner/residual_weights on a worker thread
(``HotSwapResidual``): a corrupt or stale message is rejected with an error log and the running
weights stay. Inference is a ~0.1 ms MLP call, done inline. Status goes to /diagnostics.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from pld_interfaces.msg import Action, PolicyWeights
from pld_nodes.core.config import ConfigError
from pld_nodes.core.observation import Observation
from pld_nodes.core.residual.checkpoint import WeightsError
from pld_nodes.core.residual.inference import HotSwapResidual, StampPairer
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import nanoseconds_from_stamp
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config
from pld_nodes.ros.robot_observer import RobotObserver

WEIGHTS_TOPIC = "/learner/residual_weights"


@dataclass(frozen=True)
class ResidualNodeConfig:
    weights_file: str = ""
    """Initial actor weights (a ``residual_actor.safetensors`` or a learner checkpoint's
    ``actor.safetensors``); empty = zero residual until the learner publishes."""
    use_proprio: bool = True
    use_object_state: bool = True
    privileged_state: bool = True
    """Subscribe to /sim/object_state (needed when use_object_state)."""
    stochastic: bool = True
    """Sample from the actor's Gaussian (RL data collection) instead of using its mean."""
    default_xi: float = 0.5
    seed: int = 0
    diagnostics_period_s: float = 1.0

    def __post_init__(self) -> None:
        if self.use_object_state and not self.privileged_state:
            raise ConfigError("use_object_state needs privileged_state (the object topic)")


class ResidualNode(Node):
    def __init__(self) -> None:
        super().__init__("residual")
        self.config: ResidualNodeConfig = declare_config(self, ResidualNodeConfig)
        c = self.config
        self.residual = HotSwapResidual(
            use_proprio=c.use_proprio,
            use_object_state=c.use_object_state,
            stochastic=c.stochastic,
            default_xi=c.default_xi,
            seed=c.seed,
        )
        if c.weights_file:
            try:
                self.residual.load(Path(c.weights_file).read_bytes())
            except (OSError, WeightsError) as exc:
                raise ConfigError(f"cannot load weights_file {c.weights_file!r}: {exc}") from exc
        self._pairer = StampPairer()
        self._loader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="weights")
        self._published = 0
        self._errors = 0
        self._observations = 0
        self._base_actions = 0
        self._pub = self.create_publisher(Action, "/policy/residual/action", qos.COMMAND)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Action, "/policy/base/action", self._on_base, qos.COMMAND)
        self.create_subscription(PolicyWeights, WEIGHTS_TOPIC, self._on_weights, qos.LATCHED)
        RobotObserver(self, self._on_observation, (), c.privileged_state)
        self.create_timer(c.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info(
            f"residual ready (version {self.residual.version}, stochastic={c.stochastic})"
        )

    # ------------------------------------------------------------------ control path
    def _on_observation(self, obs: Observation) -> None:
        self._observations += 1
        base = self._pairer.add_observation(obs.key_ns, obs)
        if base is not None:
            self._compute(obs, base)

    def _on_base(self, msg: Action) -> None:
        self._base_actions += 1
        obs = self._pairer.add_base_action(nanoseconds_from_stamp(msg.header.stamp), msg)
        if obs is not None:
            self._compute(obs, msg)

    def _compute(self, obs: Observation, base: Action) -> None:
        try:
            out = self.residual.infer(obs.proprio, obs.object_state, np.asarray(base.action))
        except ValueError as exc:  # no output: the arbiter sees a missing residual and holds
            self._errors += 1
            self.get_logger().error(f"no residual for this step: {exc}", throttle_duration_sec=1.0)
            return
        msg = Action(
            action=[float(v) for v in out.residual], source="residual", policy_version=out.version
        )
        msg.header.stamp = base.header.stamp
        self._pub.publish(msg)
        self._published += 1

    # ------------------------------------------------------------------ weights
    def _on_weights(self, msg: PolicyWeights) -> None:
        data = bytes(msg.data)
        self._loader.submit(self._load, data, msg.sha256, int(msg.version))

    def _load(self, data: bytes, sha256: str, version: int) -> None:
        try:
            installed = self.residual.load(data, sha256, version)
        except WeightsError as exc:
            self.get_logger().error(
                f"rejected residual weights v{version}: {exc}; still running "
                f"v{self.residual.version}"
            )
            return
        except Exception as exc:  # never let a weights message stop control
            self.residual.rejected += 1
            self.get_logger().error(f"rejected residual weights v{version}: {exc!r}")
            return
        self.get_logger().info(f"running residual weights v{installed}")

    def _publish_diagnostics(self) -> None:
        r = self.residual
        level = DiagnosticStatus.WARN if r.rejected else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: residual policy",
            message=f"v{r.version}" + (f"; last rejection: {r.last_error}" if r.rejected else ""),
            hardware_id="residual",
            values=[
                KeyValue(key="version", value=str(r.version)),
                KeyValue(key="xi", value=f"{r.xi:.3f}"),
                KeyValue(key="swaps", value=str(r.swaps)),
                KeyValue(key="rejected", value=str(r.rejected)),
                KeyValue(key="observations", value=str(self._observations)),
                KeyValue(key="base_actions", value=str(self._base_actions)),
                KeyValue(key="published", value=str(self._published)),
                KeyValue(key="input_errors", value=str(self._errors)),
                KeyValue(key="unpaired_dropped", value=str(self._pairer.dropped)),
            ],
        )
        out = DiagnosticArray(status=[status])
        out.header.stamp = self.get_clock().now().to_msg()
        self._diag.publish(out)

    def destroy_node(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(ResidualNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
