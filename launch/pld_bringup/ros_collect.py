"""PLD stage 2 through the ROS graph: the ``sim_pld`` graph records hybrid rollouts.

The same nodes as on the workstation act and record: vla_node (base), residual_node (the
stage-1 specialist's weights, mean action), arbiter_node (base for T_base steps, then base +
residual), episode_manager_node (runs a batch of episodes unattended, sim labels success) and
recorder_node (appends to the Zarr store). This process only launches the graph, watches the
store grow, and relaunches with the next seeds until enough successes are recorded.
Episode k of the stage uses env seed ``seed + k``; each launch seeds the arbiter's T_base draws
with ``seed + k0`` (k0 = its first episode), so every episode gets an independent uniform draw.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from pld_bringup import find_graph, share_dir
from pld_bringup.graph import task_config_for
from pld_bringup.process_launcher import GraphLauncher
from pld_nodes.core.pipeline.collect import CollectRequest, collect_status

LOG = logging.getLogger("pld_bringup.ros_collect")


@dataclass
class RosCollector:
    """A ``core.pipeline.collect.Collector`` that runs the sim_pld graph."""

    work_dir: Path
    batch_episodes: int = 60
    stall_timeout_s: float = 180.0
    """Error out when no episode is committed for this long (a node hangs or a topic is lost)."""

    def vla_config(self, request: CollectRequest) -> Path:
        """vla_node parameters for the request's base (the shipped file for ``lift_flow``)."""
        path = self.work_dir / "vla_node.yaml"
        params = {
            "privileged_state": True,
            "execute_steps": request.execute_steps,
            "ensemble_decay": -1.0,
            "backend": {"kind": "builtin", "checkpoint": request.base_checkpoint, "device": "cpu"},
        }
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        return path

    def __call__(self, request: CollectRequest, progress: Callable[[int, int], None]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        status = collect_status(request.store)
        launch = 0
        while not status.done(request):
            remaining = request.successes - status.successes
            rate = status.successes / status.episodes if status.episodes else 0.9
            wanted = math.ceil(remaining / max(rate, 0.25) * 1.1) + 1
            batch = max(
                1, min(self.batch_episodes, request.episode_limit - status.episodes, wanted)
            )
            self._run_batch(request, status.episodes, batch, launch, progress)
            status = collect_status(request.store)
            launch += 1

    def _run_batch(
        self,
        request: CollectRequest,
        first: int,
        count: int,
        launch: int,
        progress: Callable[[int, int], None],
    ) -> None:
        args = {
            "task": request.task,
            "task_config": task_config_for(request.task),
            "vla_config": str(self.vla_config(request)),
            "mode": request.mode,
            "episodes": str(count),
            "store": str(Path(request.store).resolve()),
            "residual_weights": str(Path(request.residual_weights).resolve()),
            "explore": "false",
            "learner": "false",
            "episode_seed": str(request.seed + first),
            "alpha": str(request.alpha),
            "arbiter_seed": str(request.seed + first),
        }
        nodes = find_graph("sim_pld").resolve(args, share_dir())
        log_dir = self.work_dir / f"logs_{launch:03d}"
        LOG.info(
            "launching sim_pld for episodes %d..%d (logs: %s)", first, first + count - 1, log_dir
        )
        target = first + count
        with GraphLauncher(nodes, log_dir=log_dir, sink=lambda line: None) as graph:
            last_change, seen = time.monotonic(), first
            while True:
                for ended in graph.poll():
                    if ended.required:
                        raise RuntimeError(f"{ended.describe()}; see {log_dir}")
                status = collect_status(request.store)
                if status.episodes != seen:
                    seen, last_change = status.episodes, time.monotonic()
                    progress(status.episodes, status.successes)
                if status.episodes >= target or status.done(request):
                    return
                if time.monotonic() - last_change > self.stall_timeout_s:
                    raise TimeoutError(
                        f"no episode recorded for {self.stall_timeout_s:.0f} s "
                        f"({status.episodes - first}/{count} of this batch); see {log_dir}"
                    )
                time.sleep(0.5)
