"""The recorded-session directory: ``session.yaml`` + ``images/NNNN.png``.

``session.yaml`` (schema ``pld-calibration-session/1``) holds the board, the camera name, the
mode (eye_in_hand | eye_to_hand | intrinsics), the robot frames and one sample per image with
the EE pose in the base frame (position m, quaternion xyzw). Loading checks everything a
calibration relies on so a bad recording fails at once with the file and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from pld_calibration import CalibrationError
from pld_calibration.board import BoardSpec
from pld_calibration.transforms import from_pos_quat
from pld_nodes.core.camera.calibration_files import read_yaml

__all__ = ["MODES", "SESSION_SCHEMA", "Sample", "Session", "load_session"]

SESSION_SCHEMA = "pld-calibration-session/1"
MODES = ("eye_in_hand", "eye_to_hand", "intrinsics")
_QUAT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Sample:
    """One view: the image file (relative to the session) and the EE pose when it was taken."""

    image: str
    ee_position: tuple[float, ...] | None = None  # 3 values, metres
    ee_quat_xyzw: tuple[float, ...] | None = None  # 4 values, unit norm
    stamp_s: float | None = None  # capture time of the image (robot clock)

    @property
    def name(self) -> str:
        return Path(self.image).stem

    def ee_pose(self) -> np.ndarray:
        if self.ee_position is None or self.ee_quat_xyzw is None:
            raise CalibrationError(f"sample {self.image} has no EE pose")
        return from_pos_quat(np.array(self.ee_position), np.array(self.ee_quat_xyzw))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image}
        if self.ee_position is not None and self.ee_quat_xyzw is not None:
            out["ee_position"] = [float(v) for v in self.ee_position]
            out["ee_quat_xyzw"] = [float(v) for v in self.ee_quat_xyzw]
        if self.stamp_s is not None:
            out["stamp_s"] = float(self.stamp_s)
        return out


@dataclass
class Session:
    """A session directory's contents; ``save`` writes ``session.yaml`` atomically."""

    root: Path
    board: BoardSpec
    camera: str = "camera"
    mode: str = "eye_in_hand"
    base_frame: str = "panda_link0"
    ee_frame: str = "panda_hand"
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.mode not in MODES:
            raise CalibrationError(f"session mode must be one of {MODES}, got {self.mode!r}")

    @property
    def needs_poses(self) -> bool:
        return self.mode != "intrinsics"

    def add_sample(
        self,
        image_rgb: np.ndarray,
        ee_pose: tuple[np.ndarray, np.ndarray] | None,
        stamp_s: float | None = None,
    ) -> Sample:
        """Write the image as the next ``images/NNNN.png`` and record it (call ``save`` after)."""
        rel = f"images/{len(self.samples):04d}.png"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = image_rgb[:, :, ::-1] if image_rgb.ndim == 3 else image_rgb
        if not cv2.imwrite(str(path), np.ascontiguousarray(bgr)):
            raise CalibrationError(f"cannot write {path}")
        position = quat = None
        if ee_pose is not None:
            position = _vector(ee_pose[0], 3, "EE position")
            quat = _vector(ee_pose[1], 4, "EE quaternion")
        sample = Sample(rel, position, quat, stamp_s)
        self.samples.append(sample)
        return sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SESSION_SCHEMA,
            "camera": self.camera,
            "mode": self.mode,
            "base_frame": self.base_frame,
            "ee_frame": self.ee_frame,
            "board": self.board.to_dict(),
            "samples": [s.to_dict() for s in self.samples],
        }

    def save(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "session.yaml"
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        os.replace(tmp, path)
        return path

    def images(self) -> Iterator[tuple[str, np.ndarray]]:
        """(sample name, RGB image) in sample order."""
        for sample in self.samples:
            bgr = cv2.imread(str(self.root / sample.image), cv2.IMREAD_COLOR)
            if bgr is None:
                raise CalibrationError(f"{self.root / sample.image}: not a readable image")
            yield sample.name, bgr[:, :, ::-1]

    def ee_poses(self) -> dict[str, np.ndarray]:
        """Sample name -> T_base_ee."""
        return {s.name: s.ee_pose() for s in self.samples if s.ee_position is not None}


def _vector(value: Any, size: int, what: str) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{what} must be {size} numbers, got {value!r}") from exc
    if arr.size != size or not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{what} must be {size} finite numbers, got {value!r}")
    return tuple(float(v) for v in arr)


def _parse_sample(entry: Any, index: int, root: Path, needs_pose: bool) -> Sample:
    where = f"{root / 'session.yaml'}: samples[{index}]"
    if not isinstance(entry, dict) or "image" not in entry:
        raise CalibrationError(f"{where} must be a mapping with 'image'")
    image = str(entry["image"])
    if not (root / image).is_file():
        raise CalibrationError(f"{where}: image file {root / image} does not exist")
    position = quat = None
    if "ee_position" in entry or "ee_quat_xyzw" in entry or needs_pose:
        if "ee_position" not in entry or "ee_quat_xyzw" not in entry:
            raise CalibrationError(f"{where}: needs ee_position and ee_quat_xyzw (the EE pose)")
        position = _vector(entry["ee_position"], 3, f"{where}.ee_position")
        quat = _vector(entry["ee_quat_xyzw"], 4, f"{where}.ee_quat_xyzw")
        norm = float(np.linalg.norm(quat))
        if abs(norm - 1.0) > _QUAT_TOLERANCE:
            raise CalibrationError(
                f"{where}.ee_quat_xyzw is not a unit quaternion (norm {norm:.4f}); "
                "record the orientation as x, y, z, w"
            )
    stamp = entry.get("stamp_s")
    return Sample(image, position, quat, None if stamp is None else float(stamp))


def load_session(root: str | Path) -> Session:
    """Read and validate a session directory."""
    root = Path(root)
    path = root / "session.yaml"
    data = read_yaml(path, error=CalibrationError)
    if not isinstance(data, dict) or data.get("schema") != SESSION_SCHEMA:
        raise CalibrationError(f"{path}: not a calibration session (schema {SESSION_SCHEMA!r})")
    mode = str(data.get("mode", ""))
    if mode not in MODES:
        raise CalibrationError(f"{path}: mode must be one of {MODES}, got {mode!r}")
    entries = data.get("samples")
    if not isinstance(entries, list) or not entries:
        raise CalibrationError(f"{path}: 'samples' must be a non-empty list")
    samples = [_parse_sample(e, i, root, mode != "intrinsics") for i, e in enumerate(entries)]
    listed = {(root / s.image).resolve() for s in samples}
    if len(listed) != len(samples):
        raise CalibrationError(f"{path}: an image is listed in more than one sample")
    on_disk = sorted(p for p in (root / "images").glob("*.png"))
    unlisted = [p.name for p in on_disk if p.resolve() not in listed]
    if unlisted:
        raise CalibrationError(
            f"{path}: {len(on_disk)} images in images/ but {len(samples)} samples; "
            f"no sample (EE pose) for {unlisted[:5]}"
        )
    return Session(
        root=root,
        board=BoardSpec.from_dict(data.get("board"), source=f"{path}: board"),
        camera=str(data.get("camera", "camera")),
        mode=mode,
        base_frame=str(data.get("base_frame", "panda_link0")),
        ee_frame=str(data.get("ee_frame", "panda_hand")),
        samples=samples,
    )
