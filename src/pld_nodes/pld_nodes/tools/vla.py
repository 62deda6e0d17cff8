"""``pld-vla``: the built-in VLA's life cycle, from demonstrations to a served policy.

    pld-vla collect-demos --task lift --episodes 20 --noise 0.1 --out data/demos_lift.zarr
    pld-vla train --store data/demos_lift.zarr --head flow --out runs/vla_lift_flow
    pld-vla eval --checkpoint runs/vla_lift_flow/checkpoints/latest --episodes 30
    pld-vla distill --store runs/pld/collect/episodes.zarr --base shipped:lift_flow --out runs/d
    torchrun --nproc_per_node 4 -m pld_nodes.tools.vla distill ... --device cuda   # multi-GPU
    pld-vla export-onnx --checkpoint <dir> --out model.onnx
    pld-vla export-lerobot --store runs/pld/collect/episodes.zarr --out exports/pld_lift
    pld-vla serve --checkpoint <dir> --port 8000 [--api-key-env PLD_API_KEY]

Data lives in an episode store (``pld_nodes.core.episode_store``); checkpoints are safetensors +
JSON. Every command logs what it does and exits non-zero with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pld_nodes.core.policy.interface import Policy

LOG = logging.getLogger("pld-vla")


def _collect(opts: argparse.Namespace) -> int:
    from pld_nodes.core.episode_data import add_demo_episodes
    from pld_nodes.core.episode_store import EpisodeStore
    from pld_nodes.core.vla.demos import collect_expert_demos

    out = Path(opts.out)
    store = (
        EpisodeStore.open(out, mode="a")
        if out.exists()
        else EpisodeStore.create(out, software_version=_version())
    )
    episodes = collect_expert_demos(
        opts.task, opts.episodes, noise_std=opts.noise, perturb_m=opts.perturb, seed=opts.seed
    )
    add_demo_episodes(
        store, episodes, source="scripted_expert", noise_std=opts.noise, perturb_m=opts.perturb
    )
    LOG.info(
        "%d demos (%d steps) -> %s (now %d episodes)",
        len(episodes),
        sum(len(e["actions"]) for e in episodes),
        out,
        store.n_episodes,
    )
    return 0 if len(episodes) == opts.episodes else 1


def _train(opts: argparse.Namespace) -> int:
    from pld_nodes.core.episode_data import load_training_episodes
    from pld_nodes.core.episode_store import EpisodeStore
    from pld_nodes.core.vla.config import VLAConfig
    from pld_nodes.core.vla.dataset import EpisodeDataset
    from pld_nodes.core.vla.train import TrainConfig, train_sft

    store = EpisodeStore.open(opts.store)
    cameras = tuple(opts.cameras)
    episodes = load_training_episodes(store, image_keys=cameras)
    if opts.max_episodes:
        episodes = episodes[: opts.max_episodes]
    object_dim = episodes[0]["object_state"].shape[1] if opts.object_state else 0
    model = VLAConfig(
        head=opts.head,
        horizon=opts.horizon,
        use_object_state=opts.object_state,
        object_state_dim=object_dim,
        image_keys=cameras,
        image_size=tuple(episodes[0]["images"][cameras[0]].shape[1:3]) if cameras else (128, 128),
    )
    dataset = EpisodeDataset(
        episodes,
        model.horizon,
        seed=opts.seed,
        image_keys=cameras,
        use_object_state=opts.object_state,
    )
    cfg = TrainConfig(
        model=model,
        steps=opts.steps,
        batch_size=opts.batch,
        lr=opts.lr,
        seed=opts.seed,
        device=opts.device,
    )
    result = train_sft(cfg, dataset, opts.out, resume=not opts.fresh)
    LOG.info("trained %s head on %d episodes: %s", opts.head, len(episodes), result)
    return 0


def _distill(opts: argparse.Namespace) -> int:
    from pld_nodes.core.episode_data import load_distillation_episodes, load_training_episodes
    from pld_nodes.core.episode_store import EpisodeStore
    from pld_nodes.core.policy.backends import resolve_checkpoint
    from pld_nodes.core.vla.checkpoint import read_config
    from pld_nodes.core.vla.distill import DistillConfig, distill, original_demos

    cfg = DistillConfig(
        base_checkpoint=opts.base,
        steps=opts.steps,
        batch_size=opts.batch,
        lr=opts.lr,
        demo_fraction=opts.demo_fraction,
        seed=opts.seed,
        device=opts.device,
    )
    cameras = read_config(resolve_checkpoint(opts.base))[0].image_keys
    episodes = load_distillation_episodes(
        EpisodeStore.open(opts.store), modes=tuple(opts.modes), image_keys=cameras
    )
    if opts.max_episodes:
        episodes = episodes[: opts.max_episodes]
    demos = []
    if opts.demo_fraction > 0:
        demos = (
            original_demos(opts.base)
            if opts.demos == "recipe"
            else load_training_episodes(EpisodeStore.open(opts.demos), image_keys=cameras)
        )
    result = distill(cfg, episodes, opts.out, demos, resume=not opts.fresh)
    LOG.info("distilled %s on %d episodes: %s", opts.base, len(episodes), result.checkpoint)
    return 0


def _export_lerobot(opts: argparse.Namespace) -> int:
    from pld_nodes.core.episode_data import distillation_indices
    from pld_nodes.core.episode_store import EpisodeStore
    from pld_nodes.core.export_lerobot import export_lerobot

    episodes = None  # successful episodes
    if opts.all:
        episodes = range(EpisodeStore.open(opts.store).n_episodes)
    elif opts.distillation_set:
        episodes = distillation_indices(EpisodeStore.open(opts.store))
    result = export_lerobot(
        opts.store, opts.out, episodes=episodes, fps=opts.fps, robot_type=opts.robot_type,
        overwrite=opts.overwrite,
    )  # fmt: skip
    LOG.info(
        "LeRobotDataset v3.0: %d episodes, %d frames -> %s",
        result.episodes,
        result.frames,
        result.root,
    )
    return 0


def _eval(opts: argparse.Namespace) -> int:
    from pld_nodes.core.vla.demos import evaluate_policy

    policy = _load_policy(opts)
    result = evaluate_policy(
        policy, opts.task, episodes=opts.episodes, seed=opts.seed, execute_k=opts.execute_k
    )
    print(
        json.dumps(
            {
                "success_rate": result.success_rate,
                "episodes": opts.episodes,
                "mean_infer_ms": result.mean_infer_ms,
                "wall_time_s": result.wall_time_s,
            }
        )
    )
    return 0


def _export(opts: argparse.Namespace) -> int:
    from pld_nodes.core.vla.checkpoint import load_checkpoint
    from pld_nodes.core.vla.onnx_export import export_onnx

    path = export_onnx(load_checkpoint(opts.checkpoint).model, opts.out)
    LOG.info("exported %s (+ %s.json)", path, path)
    return 0


def _serve(opts: argparse.Namespace) -> int:
    from pld_nodes.core.serving.openpi_server import PolicyServer

    api_key = os.environ.get(opts.api_key_env) if opts.api_key_env else None
    if opts.api_key_env and not api_key:
        raise ValueError(f"environment variable {opts.api_key_env} (API key) is empty or unset")
    server = PolicyServer(_load_policy(opts), host=opts.host, port=opts.port, api_key=api_key)
    LOG.info(
        "serving %s on ws://%s:%d (healthz: http://%s:%d/healthz)",
        opts.checkpoint,
        opts.host,
        opts.port,
        opts.host,
        opts.port,
    )
    server.serve_forever()
    return 0


def _load_policy(opts: argparse.Namespace) -> Policy:
    if str(opts.checkpoint).endswith(".onnx"):
        from pld_nodes.core.vla.onnx_policy import OnnxVLAPolicy

        return OnnxVLAPolicy(opts.checkpoint)
    from pld_nodes.core.vla.policy import BuiltinVLAPolicy

    return BuiltinVLAPolicy.from_checkpoint(opts.checkpoint, device=opts.device, num_threads=1)


def _version() -> str:
    from pld_nodes import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pld-vla", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect-demos", help="scripted-expert demos into an episode store")
    p.add_argument("--task", default="lift")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--noise", type=float, default=0.0, help="expert action noise std")
    p.add_argument("--perturb", type=float, default=0.0, help="grasp/place offset noise (m)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="episode store (.zarr), appended if it exists")
    p.set_defaults(run=_collect)
    p = sub.add_parser("train", help="SFT of the built-in VLA on a store's successful episodes")
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="run directory (checkpoints/, metrics.jsonl)")
    p.add_argument("--head", choices=("flow", "ar"), default="flow")
    p.add_argument("--horizon", type=int, default=8)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cameras", nargs="*", default=[], help="image keys to train on")
    p.add_argument("--no-object-state", dest="object_state", action="store_false")
    p.add_argument("--max-episodes", type=int, default=0, help="use only the first N episodes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints in --out")
    p.set_defaults(run=_train)
    p = sub.add_parser(
        "distill", help="PLD stage 3: fine-tune a base on a store's successful hybrid episodes"
    )
    p.add_argument("--store", required=True, help="episode store with the collected rollouts")
    p.add_argument("--base", default="shipped:lift_flow", help="checkpoint to fine-tune")
    p.add_argument("--out", required=True, help="run directory (checkpoints/, metrics.jsonl)")
    p.add_argument("--modes", nargs="+", default=["hybrid"], help="episode modes to use")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=128, help="global batch (split over ranks)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--demo-fraction", type=float, default=0.0, help="share of demos per batch")
    p.add_argument(
        "--demos", default="recipe", help="'recipe' (a shipped base's demos) or a demo store"
    )
    p.add_argument("--max-episodes", type=int, default=0, help="use only the first N episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints in --out")
    p.set_defaults(run=_distill)
    for name, fn, text in (
        ("eval", _eval, "closed-loop success in the sim"),
        ("serve", _serve, "serve over openpi's websocket protocol"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True, help="checkpoint dir or .onnx file")
        p.add_argument("--device", default="cpu")
        if name == "eval":
            p.add_argument("--task", default="lift")
            p.add_argument("--episodes", type=int, default=30)
            p.add_argument("--seed", type=int, default=1000, help="first env seed")
            p.add_argument("--execute-k", type=int, default=4)
        else:
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--api-key-env", default="", help="env var holding the API key")
        p.set_defaults(run=fn)
    p = sub.add_parser("export-lerobot", help="an episode store as a LeRobotDataset v3.0")
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="dataset root directory")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every episode (default: successes)")
    which.add_argument(
        "--distillation-set", action="store_true", help="successful hybrid episodes only"
    )
    p.add_argument("--fps", type=float, default=0.0, help="0 = from the recorded stamps")
    p.add_argument("--robot-type", default="franka")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=_export_lerobot)
    p = sub.add_parser("export-onnx", help="export a checkpoint to ONNX (+ .json sidecar)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[pld-vla] %(message)s")
    try:
        return opts.run(opts)
    except (ValueError, KeyError, OSError) as exc:
        print(f"pld-vla {opts.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
