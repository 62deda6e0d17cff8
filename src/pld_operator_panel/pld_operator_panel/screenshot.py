"""``pld-operator-panel-screenshot``: the panel during a real sim episode, saved as a PNG.

Launches ``sim_pld`` (episodes:=0, two 128² cameras) in an isolated ROS domain with
pld_bringup's process launcher, starts episodes from the panel (the sim labels them) until one
is in the store and another runs with camera images, then grabs the widget offscreen.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SIM_NODES = ("sim_bridge", "vla", "residual", "arbiter", "safety_monitor", "episode_manager",
             "recorder", "health_monitor")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pld-operator-panel-screenshot", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("docs/images/operator_panel.png"))
    p.add_argument("--domain-id", type=int, default=77, help="isolated ROS_DOMAIN_ID (1-100)")
    p.add_argument("--min-step", type=int, default=15, help="grab at this step of an episode")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many s")
    p.add_argument("--size", default="1280x820", help="window size WxH")
    return p


def sim_graph(store: Path) -> list:
    """sim_pld as shipped, started on request only, with cameras for the thumbnails."""
    from pld_bringup import find_graph, share_dir

    share = share_dir()
    nodes = find_graph("sim_pld").resolve({"episodes": "0", "store": str(store)}, share)
    cams = (share / "config/nodes/sim_cameras_128.yaml").resolve()
    out = []
    for node in nodes:
        if node.name == "sim_bridge":
            files = [f for f in node.parameter_files if f.name != "sim_cameras_none.yaml"]
            node = dataclasses.replace(node, parameter_files=(*files, cams))
        out.append(node)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from pld_bringup.process_launcher import GraphLauncher
    from pld_bringup.testing import ros_environment

    from .model import RUNNING, Action, HealthRules, Level, PanelModel
    from .qt import QtWidgets
    from .ros_bridge import OwnedNode, PanelBridge
    from .widget import OperatorPanel

    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="pld_panel_shot_") as tmp:
        os.environ.update(ros_environment(Path(tmp) / "ros", args.domain_id))
        launcher = GraphLauncher(sim_graph(Path(tmp) / "episodes.zarr"), env=dict(os.environ))
        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
        launcher.start()
        ros = OwnedNode("operator_panel", args.domain_id)
        events: queue.SimpleQueue = queue.SimpleQueue()
        model = PanelModel(HealthRules(expected_nodes=SIM_NODES))
        panel = OperatorPanel(PanelBridge(ros.node, events), events, model=model)
        panel.resize(width, height)
        panel.show()
        deadline = time.monotonic() + args.timeout

        def wait(predicate: Callable[[], bool], what: str) -> None:
            while not predicate():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"gave up waiting for {what}")
                if launcher.poll():
                    raise RuntimeError(f"a node died while waiting for {what}")
                app.processEvents()
                time.sleep(0.05)

        asked = [0.0]

        def ready() -> bool:
            """A committed episode in the store and a running one with images; else start one."""
            lc = model.lifecycle
            stored = model.store is not None and model.store.n_episodes >= 1
            if lc is not None and lc.state == RUNNING:
                return stored and model.step >= args.min_step and len(panel.cameras) >= 2
            if model.allowed(Action.START)[0] and time.monotonic() - asked[0] > 3.0:
                asked[0] = time.monotonic()  # one request at a time; retried if refused
                panel.trigger(Action.START)
            return False

        def nodes_up() -> bool:
            rows = model.health(time.monotonic())
            return all(r.level == Level.OK for r in rows if r.name in SIM_NODES)

        try:
            wait(nodes_up, "every node in the ROS graph")
            wait(ready, "a stored episode and a running one with camera images")
            panel.refresh()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            if not panel.grab().save(str(args.out)):
                raise OSError(f"could not write {args.out}")
            print(f"wrote {args.out} (episode {model.lifecycle.episode_index}, step {model.step})")
            return 0
        finally:
            panel.shutdown()
            ros.close()
            launcher.stop()


if __name__ == "__main__":
    raise SystemExit(main())
