"""Markdown report + PNG plots of a calibration, so a bad view or method is visible at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pld_calibration.handeye import HandEyeResult
from pld_calibration.intrinsics import IntrinsicsResult
from pld_calibration.synthetic import GroundTruth

__all__ = ["write_report"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _view_plot(result: IntrinsicsResult, path: Path) -> None:
    plt = _plt()
    names = list(result.view_rms_px) + list(result.rejected)
    values = list(result.view_rms_px.values()) + list(result.rejected.values())
    colors = ["tab:blue"] * len(result.view_rms_px) + ["tab:red"] * len(result.rejected)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(names)), 3.5))
    ax.bar(range(len(names)), values, color=colors)
    ax.axhline(result.rms_px, color="k", linestyle="--", label=f"overall {result.rms_px:.3f} px")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("reprojection RMS [px]")
    ax.set_title("per-view reprojection error (red: rejected as outlier)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _method_plot(result: HandEyeResult, truth: GroundTruth | None, path: Path) -> None:
    plt = _plt()
    solved = {k: v for k, v in result.methods.items() if v.transform is not None}
    names = list(solved)
    panels: list[tuple[str, list[float]]] = [
        ("board spread [mm]", [v.translation_rms_mm for v in solved.values()]),
        ("board spread [deg]", [v.rotation_rms_deg for v in solved.values()]),
    ]
    if truth is not None:
        errors = [
            truth.hand_eye_errors(v.transform) for v in solved.values() if v.transform is not None
        ]
        panels += [
            ("error vs truth [mm]", [e["translation_mm"] for e in errors]),
            ("error vs truth [deg]", [e["rotation_deg"] for e in errors]),
        ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, (title, values) in zip(np.atleast_1d(axes), panels, strict=True):
        colors = ["tab:green" if n == result.method else "tab:gray" for n in names]
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"hand-eye ({result.mode}); chosen: {result.method}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    out_dir: str | Path,
    intrinsics: IntrinsicsResult | None = None,
    hand_eye: HandEyeResult | None = None,
    truth: GroundTruth | None = None,
    title: str = "Calibration report",
) -> Path:
    """Write ``report.md`` (+ ``view_errors.png``, ``hand_eye_methods.png``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    if intrinsics is not None:
        k, d = intrinsics.intrinsics.k, intrinsics.intrinsics.d
        lines += [
            "## Intrinsics",
            "",
            f"- views used: {len(intrinsics.view_rms_px)}, corners: {intrinsics.corner_count}, "
            f"rejected as outliers: {len(intrinsics.rejected)}, "
            f"skipped (no board): {len(intrinsics.skipped)}",
            f"- reprojection RMS: {intrinsics.rms_px:.4f} px "
            f"(worst view {max(intrinsics.view_rms_px.values()):.4f} px)",
            f"- fx {k[0, 0]:.3f}, fy {k[1, 1]:.3f}, cx {k[0, 2]:.3f}, cy {k[1, 2]:.3f}",
            f"- distortion ({intrinsics.intrinsics.distortion_model}): "
            + ", ".join(f"{v:.5f}" for v in d),
        ]
        for name, reason in intrinsics.skipped.items():
            lines.append(f"- skipped {name}: {reason}")
        for name, rms in intrinsics.rejected.items():
            lines.append(f"- rejected {name}: {rms:.3f} px")
        if truth is not None:
            e = truth.intrinsics_errors(intrinsics.intrinsics)
            lines.append(
                f"- vs ground truth: fx {e['fx_pct']:+.4f} %, fy {e['fy_pct']:+.4f} %, "
                f"cx {e['cx_px']:+.3f} px, cy {e['cy_px']:+.3f} px"
            )
        lines += ["", "![per-view reprojection error](view_errors.png)", ""]
        _view_plot(intrinsics, out / "view_errors.png")
    if hand_eye is not None:
        lines += [
            f"## Hand-eye ({hand_eye.mode})",
            "",
            f"- views: {len(hand_eye.views)}; chosen method: **{hand_eye.method}** "
            "(smallest spread of the implied board corners)",
            f"- PnP reprojection RMS: median {np.median(list(hand_eye.pnp_rms_px.values())):.4f}"
            f" px, worst {max(hand_eye.pnp_rms_px.values()):.4f} px",
            "",
            "| method | board spread [mm] | board spread [deg] | corner spread [mm] |"
            + (" error [mm] | error [deg] |" if truth is not None else ""),
            "|---|---|---|---|" + ("---|---|" if truth is not None else ""),
        ]
        for name, m in hand_eye.methods.items():
            if m.transform is None:
                lines.append(f"| {name} | failed: {m.error} | | |" + (" | |" if truth else ""))
                continue
            row = (
                f"| {name} | {m.translation_rms_mm:.3f} | {m.rotation_rms_deg:.4f} | "
                f"{m.corner_rms_mm:.3f} |"
            )
            if truth is not None:
                e = truth.hand_eye_errors(m.transform)
                row += f" {e['translation_mm']:.3f} | {e['rotation_deg']:.4f} |"
            lines.append(row)
        lines += ["", "![hand-eye methods](hand_eye_methods.png)", ""]
        _method_plot(hand_eye, truth, out / "hand_eye_methods.png")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
