"""arbiter_node: who acts at each control step — base, base + residual, or hold (PLD stage 2).

For each base action (stamp = its observation) it decides with ``pld_nodes.core.arbiter``:
in the base phase at once, in the residual phase once the residual action of the same stamp
has arrived, or a hold if it does not arrive within ``residual_timeout_s``. It publishes the
command on ``command_topic`` (/arbiter/command, the safety monitor's input; only node tests
without a robot point it at /robot/command) and an ``ArbiterStep`` record on /arbiter/step for
the recorder and the operator. Episodes follow /episode/status (the sim bridge or robot
driver); the mode of the next episode is set with the /arbiter/set_mode service (``hold``
applies at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.node import Node

from pld_interfaces.msg import Action, ArbiterStep, EpisodeStatus
from pld_interfaces.srv import SetMode
from pld_nodes.core.arbiter import MODES, Arbiter, ArbiterConfig, Decision
from pld_nodes.core.config import require_finite
from pld_nodes.ros import qos
from pld_nodes.ros.conversions import nanoseconds_from_stamp
from pld_nodes.ros.node_main import run_node
from pld_nodes.ros.params import declare_config


@dataclass(frozen=True)
class ArbiterNodeConfig:
    command_topic: str = "/arbiter/command"
    residual_timeout_s: float = 0.2
    """How long a residual-phase step waits for its residual before holding."""
    check_period_s: float = 0.01

    def __post_init__(self) -> None:
        require_finite("residual_timeout_s", self.residual_timeout_s, low=0.0, low_inclusive=False)
        require_finite("check_period_s", self.check_period_s, low=0.0, low_inclusive=False)


def _key(msg: Action | EpisodeStatus) -> int:
    return nanoseconds_from_stamp(msg.header.stamp)


class ArbiterNode(Node):
    def __init__(self) -> None:
        super().__init__("arbiter")
        self.config: ArbiterNodeConfig = declare_config(self, ArbiterNodeConfig)
        self.arbiter = Arbiter(declare_config(self, ArbiterConfig, "arbiter."))
        self._step = 0  # the env's step of the observation being decided
        self._statuses: dict[int, EpisodeStatus] = {}
        self._pending: Action | None = None  # newest base action not decided yet
        self._pending_since = 0.0
        self._residuals: dict[int, Action] = {}
        self._last_decided = -1
        self.late_inputs = 0
        self._cmd = self.create_publisher(Action, self.config.command_topic, qos.COMMAND)
        self._step_pub = self.create_publisher(ArbiterStep, "/arbiter/step", qos.STATE)
        self.create_subscription(Action, "/policy/base/action", self._on_base, qos.COMMAND)
        self.create_subscription(Action, "/policy/residual/action", self._on_residual, qos.STATE)
        self.create_subscription(
            EpisodeStatus, "/episode/status", self._on_status, qos.EPISODE_STATUS
        )
        self.create_service(SetMode, "/arbiter/set_mode", self._on_set_mode)
        self.create_timer(self.config.check_period_s, self._check_timeout)
        self.get_logger().info(
            f"arbiter: first mode {self.arbiter.next_mode}, {self.arbiter.config}, "
            f"commands on {self.config.command_topic}"
        )

    # ------------------------------------------------------------------ episodes and modes
    def _on_status(self, msg: EpisodeStatus) -> None:
        """The env publishes one status per observation, with its stamp: which episode and step
        an observation (and so its base action) belongs to, and whether it is terminal."""
        self._statuses[_key(msg)] = msg
        while len(self._statuses) > 64:
            del self._statuses[min(self._statuses)]
        self._try_decide()

    def _on_set_mode(self, request: SetMode.Request, response: SetMode.Response):
        try:
            self.arbiter.request_mode(request.mode)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        if request.mode == "hold" and self.arbiter.plan is not None:
            self.arbiter.start_episode(self.arbiter.plan.episode)  # hold applies at once
        response.success = True
        response.message = f"next episode: {request.mode} (valid: {', '.join(MODES)})"
        return response

    # ------------------------------------------------------------------ inputs
    def _on_base(self, msg: Action) -> None:
        key = _key(msg)
        if key <= self._last_decided:
            self.late_inputs += 1
            return
        if self._pending is not None:
            self.late_inputs += 1  # superseded before a decision: never act on old data
        self._pending, self._pending_since = msg, self._now()
        self._try_decide()

    def _on_residual(self, msg: Action) -> None:
        key = _key(msg)
        if key <= self._last_decided:
            self.late_inputs += 1
            return
        self._residuals[key] = msg
        for old in [k for k in self._residuals if k < key - 10_000_000_000]:
            del self._residuals[old]
        self._try_decide()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _try_decide(self, timed_out: bool = False) -> None:
        base = self._pending
        if base is None:
            return
        key = _key(base)
        status = self._statuses.get(key)
        if status is None:
            return  # which episode/step this observation belongs to is not known yet
        if status.state != "running":  # the terminal observation (or between episodes)
            self._pending = None
            self._last_decided = key
            if self.arbiter.plan is not None and status.state == "ended":
                self.arbiter.end_episode()
            return
        if self.arbiter.plan is None or self.arbiter.plan.episode != int(status.episode_index):
            plan = self.arbiter.start_episode(int(status.episode_index))
            self.get_logger().info(
                f"episode {plan.episode}: mode {plan.mode}, T_base {plan.t_base}"
            )
        self._step = int(status.step)
        residual = self._residuals.get(key)
        needs_residual = self.arbiter.phase_at(self._step) == 1
        if needs_residual and residual is None and not timed_out:
            return
        decision = self.arbiter.decide(
            self._step, np.asarray(base.action), None if residual is None else residual.action
        )
        self._publish(decision, base, residual)

    def _check_timeout(self) -> None:
        if (
            self._pending is not None
            and self._now() - self._pending_since > self.config.residual_timeout_s
        ):
            self._try_decide(timed_out=True)

    # ------------------------------------------------------------------ outputs
    def _publish(self, d: Decision, base: Action, residual: Action | None) -> None:
        plan = self.arbiter.plan
        assert plan is not None
        cmd = Action(action=[float(v) for v in d.action], source=_source(d.phase))
        cmd.header.stamp = base.header.stamp
        self._cmd.publish(cmd)
        zeros = [0.0] * len(d.action)
        rec = ArbiterStep(
            episode_index=plan.episode,
            step=self._step,
            mode=plan.mode,
            t_base=plan.t_base,
            phase=d.phase,
            xi=float(self.arbiter.config.xi),
            alpha=float(self.arbiter.config.alpha),
            base_action=[float(v) for v in base.action],
            residual_action=zeros if d.residual is None else [float(v) for v in d.residual],
            action=cmd.action,
            base_version=int(base.policy_version),
            residual_version=0
            if d.residual is None or residual is None
            else int(residual.policy_version),
            hold_reason=d.reason,
        )
        rec.header.stamp = base.header.stamp
        self._step_pub.publish(rec)
        self._last_decided = _key(base)
        self._pending = None
        self._residuals = {k: v for k, v in self._residuals.items() if k > self._last_decided}
        if d.is_hold:
            self.get_logger().warning(f"hold: {d.reason}", throttle_duration_sec=1.0)


def _source(phase: int) -> str:
    return ("base", "base+residual", "hold")[phase]


def main(args: list[str] | None = None) -> int:
    return run_node(ArbiterNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
