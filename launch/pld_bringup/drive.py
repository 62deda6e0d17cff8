"""``pld-drive``: a smoke check of the simulated robot graph, driven over ROS for a few episodes.

It launches graph ``sim_vla`` (or ``sim``) in lockstep mode with the process launcher, then
drives episodes from this process exactly as the arbiter would: reset through
``/episode/reset``, read complete observations from the robot topics, publish
``/arbiter/command`` (the safety monitor's input), stop when ``/episode/status`` says the
episode ended. The acting policy is the base VLA in vla_node or the task's scripted expert.
Use it to check a workstation's sim/ROS setup in a minute; the main job (``pld-run``) is the
whole PLD pipeline.
Writes ``<out>/report.md``, ``<out>/episodes.png`` and ``<out>/config.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from pld_bringup import find_graph, share_dir
from pld_bringup.graph import task_config_for
from pld_bringup.process_launcher import GraphLauncher

LOG = logging.getLogger("pld_bringup.drive")


@dataclass(frozen=True)
class EpisodeRecord:
    index: int
    seed: int
    steps: int
    success: bool
    reason: str
    wall_s: float


@dataclass(frozen=True)
class JobConfig:
    task: str = "lift"
    episodes: int = 10
    seed: int = 1000
    policy: str = "base"
    vla_config: str = "config/nodes/vla_lift_flow.yaml"
    cameras: bool = False
    expert_noise: float = 0.0
    step_timeout_s: float = 30.0
    out: str = ""


def _parse(argv: list[str] | None) -> JobConfig:
    parser = argparse.ArgumentParser(
        prog="pld-drive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="lift")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument(
        "--seed",
        type=int,
        default=1000,
        help="first episode seed (the shipped base was trained on seeds < 100)",
    )
    parser.add_argument(
        "--policy",
        choices=("base", "expert"),
        default="base",
        help="base: the VLA in vla_node (graph sim_vla); expert: scripted expert",
    )
    parser.add_argument(
        "--vla-config",
        default="config/nodes/vla_lift_flow.yaml",
        help="vla_node parameter file (backend, checkpoint) for --policy base",
    )
    parser.add_argument(
        "--cameras", action="store_true", help="render and publish the two 128x128 cameras (slower)"
    )
    parser.add_argument("--expert-noise", type=float, default=0.0)
    parser.add_argument("--out", default="", help="report directory (default runs/<time>)")
    opts = parser.parse_args(argv)
    out = opts.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    if opts.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {opts.episodes}")
    return JobConfig(
        opts.task,
        opts.episodes,
        opts.seed,
        opts.policy,
        opts.vla_config,
        opts.cameras,
        opts.expert_noise,
        out=out,
    )


class ExpertActions:
    """The sim's scripted expert (``ExpertPolicy``), computed in this process from the observed
    state; built on the first observation, when the object names are known."""

    source = "scripted_expert"

    def __init__(self, task: str, noise_std: float = 0.0, seed: int | None = None) -> None:
        self._args = (task, noise_std, seed)
        self._policy = None

    def start_episode(self, obs) -> None:
        from pld_nodes.core.policy.expert_policy import ExpertPolicy

        if self._policy is None:
            task, noise_std, seed = self._args
            self._policy = ExpertPolicy(task, obs.object_state_names, noise_std, seed)
        self._policy.reset()

    def action_for(self, obs, timeout_s: float):
        from pld_nodes.core.policy.interface import PolicyObservation

        return self._policy.infer(
            PolicyObservation(proprio=obs.proprio, instruction="", object_state=obs.object_state)
        )[0]


class BaseActions:
    """The base policy's action for an observation, as published by vla_node on
    /policy/base/action (matched by the observation's stamp)."""

    source = "base"

    def __init__(self, node) -> None:
        from pld_interfaces.msg import Action
        from pld_nodes.ros import qos

        self._actions: dict[tuple[int, int], list[float]] = {}
        self._cond = threading.Condition()
        node.create_subscription(Action, "/policy/base/action", self._on_action, qos.COMMAND)

    def _on_action(self, msg) -> None:
        with self._cond:
            self._actions[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = list(msg.action)
            self._cond.notify_all()

    def start_episode(self, obs) -> None:
        from pld_nodes.ros.conversions import stamp_from_nanoseconds

        first = stamp_from_nanoseconds(obs.key_ns)
        with self._cond:  # forget the previous episode's leftovers, keep anything for this one
            for key in [k for k in self._actions if k < (first.sec, first.nanosec)]:
                del self._actions[key]

    def action_for(self, obs, timeout_s: float):
        from pld_nodes.ros.conversions import stamp_from_nanoseconds

        stamp = stamp_from_nanoseconds(obs.key_ns)
        key = (stamp.sec, stamp.nanosec)
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._actions, timeout_s):
                raise TimeoutError(f"vla_node gave no action for t={obs.stamp_s:.3f} s")
            return self._actions.pop(key)


class EpisodeDriver:
    """Drives episodes over ROS from an in-process node (reset → act on observations → end).

    It stands where the arbiter stands: the chosen action goes to ``command_topic``
    (/arbiter/command, which the graph's safety monitor makes safe and forwards to
    /robot/command; a bare sim bridge under test takes /robot/command directly).
    """

    def __init__(
        self, node, camera_names: tuple[str, ...], actions, command_topic: str = "/arbiter/command"
    ) -> None:
        from pld_interfaces.msg import Action, EpisodeStatus
        from pld_nodes.ros import qos
        from pld_nodes.ros.robot_observer import RobotObserver

        self.node = node
        self.actions = actions
        self._Action = Action
        self._status = None
        self._obs = None
        self._cond = threading.Condition()
        self._cmd = node.create_publisher(Action, command_topic, qos.COMMAND)
        node.create_subscription(EpisodeStatus, "/episode/status", self._on_status, qos.LATCHED)
        RobotObserver(node, self._on_obs, camera_names, privileged_state=True)

    def _on_status(self, msg) -> None:
        with self._cond:
            self._status = msg
            self._cond.notify_all()

    def _on_obs(self, obs) -> None:
        with self._cond:
            self._obs = obs
            self._cond.notify_all()

    def _wait(self, predicate, timeout_s: float, what: str):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout_s):
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def run_episode(self, probe, seed: int, timeout_s: float, progress=None) -> EpisodeRecord:
        """Reset with ``seed`` and act until the bridge reports the episode ended."""
        from pld_interfaces.srv import ResetEpisode
        from pld_nodes.ros.conversions import stamp_from_nanoseconds

        start = time.monotonic()
        with self._cond:
            self._obs = None
        reply = probe.call(
            ResetEpisode, "/episode/reset", ResetEpisode.Request(seed=seed), timeout_s=timeout_s
        )
        if not reply.success:
            raise RuntimeError(f"reset failed: {reply.message}")
        index = reply.episode_index
        self._wait(
            lambda: (
                self._obs is not None
                and self._status is not None
                and self._status.episode_index == index
                and self._status.step == 0
            ),
            timeout_s,
            "the first observation",
        )
        self.actions.start_episode(self._obs)
        step = 0
        while True:
            with self._cond:
                status, obs = self._status, self._obs
            if status.state == "ended":
                break
            values = self.actions.action_for(obs, timeout_s)
            msg = self._Action(action=[float(v) for v in values], source=self.actions.source)
            msg.header.stamp = stamp_from_nanoseconds(obs.key_ns)
            self._cmd.publish(msg)
            step += 1
            self._wait(
                lambda s=step, before=obs.stamp_s: (
                    self._status.step >= s and self._obs is not None and self._obs.stamp_s > before
                ),
                timeout_s,
                f"step {step}",
            )
            if progress is not None:
                progress()
        return EpisodeRecord(
            int(index),
            reply.seed,
            status.step,
            bool(status.success),
            status.reason,
            time.monotonic() - start,
        )


def _policy_name(cfg: JobConfig) -> str:
    return f"base VLA ({cfg.vla_config})" if cfg.policy == "base" else "scripted expert"


def write_report(cfg: JobConfig, records: list[EpisodeRecord], wall_s: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    (out / "episodes.json").write_text(json.dumps([asdict(r) for r in records], indent=2))
    fig, ax = plt.subplots(figsize=(6, 3))
    colors = ["tab:green" if r.success else "tab:red" for r in records]
    ax.bar([r.index for r in records], [r.steps for r in records], color=colors)
    ax.set_xticks([r.index for r in records], [f"{r.index}\nseed {r.seed}" for r in records])
    ax.set_xlabel("episode")
    ax.set_ylabel("steps (green = success, red = not)")
    ax.set_title(f"{cfg.task}: {_policy_name(cfg)} over ROS")
    fig.tight_layout()
    fig.savefig(out / "episodes.png", dpi=100)
    plt.close(fig)
    successes = sum(r.success for r in records)
    steps = sum(r.steps for r in records)
    rows = "\n".join(
        f"| {r.index} | {r.seed} | {r.steps} | {'yes' if r.success else 'no'} | {r.reason} "
        f"| {r.wall_s:.1f} |"
        for r in records
    )
    (out / "report.md").write_text(f"""# pld-drive report — {cfg.task}

Simulated robot graph in lockstep, episodes driven over ROS; acting policy: **{_policy_name(cfg)}**.
Cameras {"on" if cfg.cameras else "off"}. Seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1}.

| metric | value |
|---|---|
| episodes | {len(records)} |
| success rate | {successes}/{len(records)} ({100.0 * successes / len(records):.0f}%) |
| steps over ROS | {steps} |
| step rate over ROS | {steps / max(sum(r.wall_s for r in records), 1e-9):.1f} steps/s |
| wall time (incl. startup) | {wall_s:.1f} s |

| episode | seed | steps | success | end | wall (s) |
|---|---|---|---|---|---|
{rows}

![episodes](episodes.png)
""")
    return out / "report.md"


def main(argv: list[str] | None = None) -> int:
    from rich.progress import Progress

    from pld_bringup.probe import RosProbe

    cfg = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="[pld-drive] %(message)s")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(share_dir() / "config/fastdds.xml"))
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    cameras_cfg = (
        "config/nodes/sim_cameras_128.yaml" if cfg.cameras else "config/nodes/sim_cameras_none.yaml"
    )
    args = {
        "task": cfg.task,
        "task_config": task_config_for(cfg.task),
        "step_mode": "lockstep",
        "seed": str(cfg.seed),
        "cameras_config": cameras_cfg,
    }
    if cfg.policy == "base":
        args["vla_config"] = cfg.vla_config
    nodes = find_graph("sim_vla" if cfg.policy == "base" else "sim").resolve(args, share_dir())
    camera_names = ("agentview", "robot0_eye_in_hand") if cfg.cameras else ()
    log_dir = Path(cfg.out) / "logs"
    started = time.monotonic()
    records: list[EpisodeRecord] = []
    with GraphLauncher(nodes, log_dir=log_dir, sink=lambda line: None) as graph:
        probe = RosProbe(domain, name="pld_drive")
        try:
            actions = (
                BaseActions(probe.node)
                if cfg.policy == "base"
                else ExpertActions(cfg.task, cfg.expert_noise, cfg.seed)
            )
            driver = EpisodeDriver(probe.node, camera_names, actions)
            with Progress() as bar:
                total = bar.add_task("episodes", total=cfg.episodes)
                for k in range(cfg.episodes):
                    steps = bar.add_task(f"  episode {k}", total=None)
                    rec = driver.run_episode(
                        probe,
                        cfg.seed + k,
                        cfg.step_timeout_s,
                        progress=lambda s=steps: bar.advance(s),
                    )
                    bar.remove_task(steps)
                    bar.advance(total)
                    records.append(rec)
                    LOG.info(
                        "episode %d: %s after %d steps (%.1f s)",
                        rec.index,
                        "success" if rec.success else rec.reason,
                        rec.steps,
                        rec.wall_s,
                    )
                    if graph.poll():
                        raise RuntimeError(f"a node died; see {log_dir}")
        finally:
            probe.close()
    report = write_report(cfg, records, time.monotonic() - started)
    LOG.info("report: %s", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
