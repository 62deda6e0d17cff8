"""``pld-calibrate``: board images, synthetic sessions, intrinsics and hand-eye from a session.

Bad input ends with one line on stderr and exit code 2 (the stack's configuration-error code).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from rich.console import Console
from rich.table import Table

from pld_calibration.board import BoardSpec, load_board, save_board
from pld_calibration.detect import detect_all
from pld_calibration.handeye import HandEyeResult, Mode, calibrate_hand_eye
from pld_calibration.intrinsics import IntrinsicsOptions, IntrinsicsResult, calibrate_intrinsics
from pld_calibration.report import write_report
from pld_calibration.session import Session, load_session
from pld_calibration.synthetic import SynthConfig, load_ground_truth, render_session
from pld_nodes.core.camera.calibration_files import (
    CameraIntrinsics,
    Extrinsics,
    load_camera_info,
    save_camera_info,
    save_extrinsics,
)
from pld_nodes.core.config import ConfigError

__all__ = ["main"]

console = Console()


def _board(path: str | None) -> BoardSpec:
    return load_board(path) if path else BoardSpec()


def _cmd_board(args: argparse.Namespace) -> None:
    import PIL.Image

    board = _board(args.board)
    image, square = board.print_image(args.dpi, margin_m=args.margin_mm / 1e3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(image).save(args.out, dpi=(args.dpi, args.dpi))
    if args.save_spec:
        save_board(args.save_spec, board)
    w, h = image.shape[1] * 25.4 / args.dpi, image.shape[0] * 25.4 / args.dpi
    console.print(
        f"wrote {args.out}: {w:.1f} x {h:.1f} mm at {args.dpi} dpi; print at 100 %, then "
        f"measure: square {square * 1e3:.3f} mm (spec {board.square_length_m * 1e3:.3f} mm)"
    )


def _cmd_synth(args: argparse.Namespace) -> None:
    cfg = SynthConfig(
        mode=args.mode,
        views=args.views,
        width=args.width,
        height=args.height,
        fovy_deg=args.fovy,
        seed=args.seed,
        board=_board(args.board),
    )
    start = time.perf_counter()
    session = render_session(cfg, args.out, progress=True)
    console.print(
        f"rendered {len(session.samples)} {args.mode} views into {args.out} "
        f"in {time.perf_counter() - start:.1f} s (ground truth: ground_truth.yaml)"
    )


def _intrinsics(session: Session, args: argparse.Namespace) -> IntrinsicsResult:
    detections = detect_all(session.images(), session.board, args.min_corners, progress=True)
    options = IntrinsicsOptions(reject_outliers=not args.keep_outliers)
    result = calibrate_intrinsics(detections, session.camera, options)
    table = Table(title=f"intrinsics: {session.camera}")
    for col in (
        "views",
        "rejected",
        "skipped",
        "RMS [px]",
        "worst view [px]",
        "fx",
        "fy",
        "cx",
        "cy",
    ):
        table.add_column(col, justify="right")
    k = result.intrinsics.k
    table.add_row(
        str(len(result.view_rms_px)),
        str(len(result.rejected)),
        str(len(result.skipped)),
        f"{result.rms_px:.4f}",
        f"{max(result.view_rms_px.values()):.4f}",
        *(f"{v:.2f}" for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2])),
    )
    console.print(table)
    return result


def _hand_eye(
    session: Session, cam: CameraIntrinsics, args: argparse.Namespace
) -> tuple[HandEyeResult, Extrinsics]:
    if session.mode not in ("eye_in_hand", "eye_to_hand"):
        raise ConfigError(f"{session.root}: an intrinsics-only session has no EE poses")
    mode = cast(Mode, session.mode)
    detections = detect_all(session.images(), session.board, args.min_corners, progress=True)
    if detections.image_size != (cam.width, cam.height):
        raise ConfigError(
            f"camera_info is for {cam.width}x{cam.height} images, the session has "
            f"{detections.image_size[0]}x{detections.image_size[1]}"
        )
    result = calibrate_hand_eye(mode, session.ee_poses(), detections.detections, cam, session.board)
    best = result.best
    parent = session.ee_frame if session.mode == "eye_in_hand" else session.base_frame
    extrinsics = Extrinsics.from_matrix(
        result.transform,
        parent,
        f"{session.camera}_optical_frame",
        mode=session.mode,
        method=result.method,
        views=len(result.views),
        skipped_views=sorted(detections.skipped),
        residual_translation_mm=best.translation_rms_mm,
        residual_rotation_deg=best.rotation_rms_deg,
        residual_corner_mm=best.corner_rms_mm,
        pnp_rms_px_median=float(np.median(list(result.pnp_rms_px.values()))),
        methods={
            k: (
                {"error": v.error}
                if v.transform is None
                else {
                    "translation_rms_mm": v.translation_rms_mm,
                    "rotation_rms_deg": v.rotation_rms_deg,
                    "corner_rms_mm": v.corner_rms_mm,
                }
            )
            for k, v in result.methods.items()
        },
        session=session.root.name,
    )
    table = Table(title=f"hand-eye {session.mode}: {parent} -> {extrinsics.child_frame}")
    for col in ("method", "spread [mm]", "spread [deg]", "corner spread [mm]"):
        table.add_column(col, justify="right")
    for name, m in result.methods.items():
        mark = " *" if name == result.method else ""
        if m.transform is None:
            table.add_row(name, "failed", m.error, "")
        else:
            table.add_row(
                name + mark,
                f"{m.translation_rms_mm:.3f}",
                f"{m.rotation_rms_deg:.4f}",
                f"{m.corner_rms_mm:.3f}",
            )
    console.print(table)
    t = extrinsics.translation
    console.print(
        f"chosen {result.method}: t = [{t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}] m, "
        f"q_xyzw = {np.round(extrinsics.rotation_xyzw, 5).tolist()}"
    )
    return result, extrinsics


def _print_truth(session: Session, intr: IntrinsicsResult | None, he: HandEyeResult | None) -> None:
    truth = load_ground_truth(session.root)
    if truth is None:
        return
    if intr is not None:
        e = truth.intrinsics_errors(intr.intrinsics)
        console.print(
            f"vs ground truth: fx {e['fx_pct']:+.4f} %, fy {e['fy_pct']:+.4f} %, "
            f"cx {e['cx_px']:+.3f} px, cy {e['cy_px']:+.3f} px"
        )
    if he is not None:
        e = truth.hand_eye_errors(he.transform)
        console.print(
            f"vs ground truth: hand-eye {e['translation_mm']:.3f} mm, {e['rotation_deg']:.4f} deg"
        )


def _cmd_intrinsics(args: argparse.Namespace) -> None:
    session = load_session(args.session)
    result = _intrinsics(session, args)
    save_camera_info(args.out, result.intrinsics)
    console.print(f"wrote {args.out}")
    _print_truth(session, result, None)
    if args.report:
        report = write_report(args.report, intrinsics=result, truth=load_ground_truth(session.root))
        console.print(f"wrote {report}")


def _cmd_handeye(args: argparse.Namespace) -> None:
    session = load_session(args.session)
    result, extrinsics = _hand_eye(session, load_camera_info(args.camera_info), args)
    save_extrinsics(args.out, extrinsics)
    console.print(f"wrote {args.out}")
    _print_truth(session, None, result)
    if args.report:
        report = write_report(args.report, hand_eye=result, truth=load_ground_truth(session.root))
        console.print(f"wrote {report}")


def _cmd_all(args: argparse.Namespace) -> None:
    session = load_session(args.session)
    out = Path(args.out)
    intr = _intrinsics(session, args)
    save_camera_info(out / "camera_info.yaml", intr.intrinsics)
    he = None
    if session.needs_poses:
        he, extrinsics = _hand_eye(session, intr.intrinsics, args)
        save_extrinsics(out / "extrinsics.yaml", extrinsics)
    _print_truth(session, intr, he)
    report = write_report(out, intrinsics=intr, hand_eye=he, truth=load_ground_truth(session.root))
    console.print(
        f"wrote {out / 'camera_info.yaml'}"
        + (f", {out / 'extrinsics.yaml'}" if he else "")
        + f" and {report}"
    )


def _cmd_capture(args: argparse.Namespace) -> None:
    from pld_calibration.capture_node import run_capture

    root = Path(args.out)
    if (root / "session.yaml").exists():
        raise ConfigError(f"{root} already holds a session: choose a new directory")
    session = Session(
        root=root,
        board=_board(args.board),
        camera=args.camera,
        mode=args.mode,
        base_frame=args.base_frame,
        ee_frame=args.ee_frame,
    )
    count = run_capture(
        session, args.tolerance_ms / 1e3, args.still_mm / 1e3, not args.service_only
    )
    console.print(f"{count} samples in {root}; next: pld-calibrate all {root} --out <dir>")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pld-calibrate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("board", help="render a print-ready ChArUco board")
    p.add_argument("--board", help="board YAML (default: 7x5, 40/30 mm, DICT_5X5_100)")
    p.add_argument("--out", default="board.png")
    p.add_argument("--dpi", type=int, default=300)
    p.add_argument("--margin-mm", type=float, default=10.0)
    p.add_argument("--save-spec", help="also write the board YAML here")
    p.set_defaults(func=_cmd_board)

    p = sub.add_parser("capture", help="record a session from the running stack (ROS)")
    p.add_argument("--camera", required=True, help="camera name: /cameras/<name>/image_raw")
    p.add_argument("--out", required=True, help="new session directory")
    p.add_argument(
        "--mode", choices=("eye_in_hand", "eye_to_hand", "intrinsics"), default="eye_in_hand"
    )
    p.add_argument("--board", help="board YAML (default: 7x5, 40/30 mm, DICT_5X5_100)")
    p.add_argument("--base-frame", default="panda_link0")
    p.add_argument("--ee-frame", default="panda_hand")
    p.add_argument("--tolerance-ms", type=float, default=20.0, help="image-to-pose stamp gap")
    p.add_argument("--still-mm", type=float, default=0.5, help="arm motion allowed around a sample")
    p.add_argument(
        "--service-only",
        action="store_true",
        help="capture only through the ~/capture service (no terminal input); Ctrl-C ends",
    )
    p.set_defaults(func=_cmd_capture)

    p = sub.add_parser("synth", help="render a synthetic session with ground truth (MuJoCo)")
    p.add_argument("--mode", choices=("eye_in_hand", "eye_to_hand"), default="eye_in_hand")
    p.add_argument("--views", type=int, default=20)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fovy", type=float, default=45.0)
    p.add_argument("--board", help="board YAML")
    p.set_defaults(func=_cmd_synth)

    def detection_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--min-corners",
            type=int,
            default=6,
            help="views with fewer ChArUco corners are skipped",
        )
        p.add_argument(
            "--keep-outliers",
            action="store_true",
            help="do not reject views with outlying reprojection error",
        )

    p = sub.add_parser("intrinsics", help="camera_info YAML from a session")
    p.add_argument("session")
    p.add_argument("--out", default="camera_info.yaml")
    p.add_argument("--report", help="write report.md and plots into this directory")
    detection_args(p)
    p.set_defaults(func=_cmd_intrinsics)

    p = sub.add_parser("handeye", help="extrinsics YAML (hand-eye) from a session")
    p.add_argument("session")
    p.add_argument("--camera-info", required=True)
    p.add_argument("--out", default="extrinsics.yaml")
    p.add_argument("--report", help="write report.md and plots into this directory")
    detection_args(p)
    p.set_defaults(func=_cmd_handeye)

    p = sub.add_parser("all", help="intrinsics, then hand-eye with them, and one report")
    p.add_argument("session")
    p.add_argument("--out", required=True, help="directory for the YAML files and the report")
    detection_args(p)
    p.set_defaults(func=_cmd_all)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:  # CalibrationError included
        print(f"pld-calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
