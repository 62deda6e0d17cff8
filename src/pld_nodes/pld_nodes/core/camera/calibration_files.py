"""Calibration files the stack reads: ROS camera_info YAML and our extrinsics YAML.

The camera_info format is the one ``camera_calibration_parsers`` reads and writes (so files from
``ros2 run camera_calibration cameracalibrator`` work as they are). Extrinsics are one rigid
transform per file (``schema: pld-extrinsics/1``): ``parent_frame`` -> ``child_frame`` (the
camera's optical frame, z forward, x right, y down), i.e. a point p in the camera frame is
``R @ p + t`` in the parent frame. The calibration tools (``pld-calibrate``) write both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from pld_nodes.core.config import ConfigError

__all__ = [
    "CameraIntrinsics",
    "Extrinsics",
    "load_camera_info",
    "load_extrinsics",
    "read_yaml",
    "save_camera_info",
    "save_extrinsics",
]

EXTRINSICS_SCHEMA = "pld-extrinsics/1"
_DISTORTION_LENGTHS = {"plumb_bob": (5,), "rational_polynomial": (8,), "equidistant": (4,)}


@dataclass(frozen=True)
class CameraIntrinsics:
    """A calibrated pinhole camera (OpenCV model: pixel centres at integer coordinates)."""

    width: int
    height: int
    k: np.ndarray  # 3x3 camera matrix
    d: np.ndarray = field(default_factory=lambda: np.zeros(5))
    distortion_model: str = "plumb_bob"
    camera_name: str = "camera"
    r: np.ndarray = field(default_factory=lambda: np.eye(3))
    p: np.ndarray | None = None  # 3x4 projection matrix; None = [K | 0]

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"camera size must be positive, got {self.width}x{self.height}")
        k = np.asarray(self.k, dtype=np.float64).reshape(3, 3)
        d = np.asarray(self.d, dtype=np.float64).reshape(-1)
        r = np.asarray(self.r, dtype=np.float64).reshape(3, 3)
        p = np.hstack([k, np.zeros((3, 1))]) if self.p is None else np.asarray(self.p, float)
        p = p.reshape(3, 4)
        for name, arr in (("K", k), ("D", d), ("R", r), ("P", p)):
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"camera {self.camera_name!r}: {name} has non-finite values")
        if k[0, 0] <= 0 or k[1, 1] <= 0 or k[2, 2] != 1.0:
            raise ConfigError(
                f"camera {self.camera_name!r}: K needs fx, fy > 0 and K[2,2] = 1, got {k.tolist()}"
            )
        expected = _DISTORTION_LENGTHS.get(self.distortion_model)
        if expected is not None and d.size not in expected and d.size != 0:
            raise ConfigError(
                f"camera {self.camera_name!r}: {self.distortion_model} needs {expected[0]} "
                f"distortion coefficients, got {d.size}"
            )
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "p", p)

    @classmethod
    def pinhole(
        cls, width: int, height: int, fovy_deg: float, camera_name: str = "camera"
    ) -> CameraIntrinsics:
        """An ideal camera with vertical field of view ``fovy_deg`` (MuJoCo's camera model)."""
        f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
        k = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0, 0, 1.0]])
        return cls(width=width, height=height, k=k, camera_name=camera_name)

    def cropped_and_resized(
        self, crop_xywh: tuple[int, int, int, int] | None, width: int, height: int
    ) -> CameraIntrinsics:
        """Intrinsics of the image cut to ``crop_xywh`` (None: whole image) then resized.

        Keeps the OpenCV pixel-centre convention: a resize by s maps x to (x + 0.5) * s - 0.5.
        """
        x0, y0, cw, ch = crop_xywh if crop_xywh is not None else (0, 0, self.width, self.height)
        sx, sy = width / cw, height / ch
        k, p = self.k.copy(), self.p.copy()
        for mat in (k, p):
            mat[0, 2] = (mat[0, 2] - x0 + 0.5) * sx - 0.5
            mat[1, 2] = (mat[1, 2] - y0 + 0.5) * sy - 0.5
            mat[0, 0] *= sx
            mat[0, 1] *= sx
            mat[1, 1] *= sy
        p[0, 3] *= sx
        p[1, 3] *= sy
        return CameraIntrinsics(
            width=width,
            height=height,
            k=k,
            d=self.d.copy(),
            distortion_model=self.distortion_model,
            camera_name=self.camera_name,
            r=self.r.copy(),
            p=p,
        )

    def to_dict(self) -> dict[str, Any]:
        def matrix(rows: int, cols: int, data: np.ndarray) -> dict[str, Any]:
            return {"rows": rows, "cols": cols, "data": [float(v) for v in data.reshape(-1)]}

        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.camera_name,
            "camera_matrix": matrix(3, 3, self.k),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": matrix(1, int(self.d.size), self.d),
            "rectification_matrix": matrix(3, 3, self.r),
            "projection_matrix": matrix(3, 4, self.p),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "camera_info") -> CameraIntrinsics:
        def matrix(key: str, shape: tuple[int, int] | None) -> np.ndarray:
            entry = data.get(key)
            if not isinstance(entry, dict) or "data" not in entry:
                raise ConfigError(f"{source}: '{key}' missing or not a {{rows, cols, data}} map")
            arr = np.asarray(entry["data"], dtype=np.float64)
            if shape is None:
                return arr.reshape(-1)
            if arr.size != shape[0] * shape[1]:
                raise ConfigError(f"{source}: '{key}' needs {shape[0]}x{shape[1]} values")
            return arr.reshape(shape)

        try:
            width, height = int(data["image_width"]), int(data["image_height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: image_width/image_height missing or invalid") from exc
        return cls(
            width=width,
            height=height,
            k=matrix("camera_matrix", (3, 3)),
            d=matrix("distortion_coefficients", None),
            distortion_model=str(data.get("distortion_model", "plumb_bob")),
            camera_name=str(data.get("camera_name", "camera")),
            r=matrix("rectification_matrix", (3, 3))
            if "rectification_matrix" in data
            else np.eye(3),
            p=matrix("projection_matrix", (3, 4)) if "projection_matrix" in data else None,
        )


@dataclass(frozen=True)
class Extrinsics:
    """Pose of ``child_frame`` (a camera's optical frame) in ``parent_frame``."""

    parent_frame: str
    child_frame: str
    translation: np.ndarray  # (3,) metres
    rotation_xyzw: np.ndarray  # (4,) unit quaternion
    info: dict[str, Any] = field(default_factory=dict)  # method, residuals, sample count

    def __post_init__(self) -> None:
        t = np.asarray(self.translation, dtype=np.float64).reshape(-1)
        q = np.asarray(self.rotation_xyzw, dtype=np.float64).reshape(-1)
        if t.size != 3 or q.size != 4 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise ConfigError(
                "extrinsics need a finite 3-vector translation and 4-vector quaternion"
            )
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-3:
            raise ConfigError(
                f"extrinsics rotation_xyzw must be a unit quaternion, norm {norm:.4f}"
            )
        if not self.parent_frame or not self.child_frame:
            raise ConfigError("extrinsics need parent_frame and child_frame")
        object.__setattr__(self, "translation", t)
        object.__setattr__(self, "rotation_xyzw", q / norm)

    @classmethod
    def from_matrix(
        cls, matrix: np.ndarray, parent_frame: str, child_frame: str, **info: Any
    ) -> Extrinsics:
        m = np.asarray(matrix, dtype=np.float64)
        quat = Rotation.from_matrix(m[:3, :3]).as_quat()
        return cls(parent_frame, child_frame, m[:3, 3].copy(), quat, dict(info))

    def as_matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = Rotation.from_quat(self.rotation_xyzw).as_matrix()
        m[:3, 3] = self.translation
        return m

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": EXTRINSICS_SCHEMA,
            "parent_frame": self.parent_frame,
            "child_frame": self.child_frame,
            "translation": [float(v) for v in self.translation],
            "rotation_xyzw": [float(v) for v in self.rotation_xyzw],
            "info": _plain(self.info),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "extrinsics") -> Extrinsics:
        if data.get("schema") != EXTRINSICS_SCHEMA:
            raise ConfigError(
                f"{source}: schema must be {EXTRINSICS_SCHEMA!r}, got {data.get('schema')!r}"
            )
        try:
            return cls(
                parent_frame=str(data["parent_frame"]),
                child_frame=str(data["child_frame"]),
                translation=np.asarray(data["translation"], dtype=np.float64),
                rotation_xyzw=np.asarray(data["rotation_xyzw"], dtype=np.float64),
                info=dict(data.get("info") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{source}: {exc}") from exc


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> plain YAML types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_yaml(path: str | Path, what: str = "", error: type[ConfigError] = ConfigError) -> Any:
    """The YAML document in ``path``; an unreadable file or bad YAML raises ``error`` naming it.

    ``error`` lets a caller keep its own ConfigError subclass (pld_calibration's)."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except OSError as exc:
        raise error(f"cannot read {what + ' ' if what else ''}{p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{p}: invalid YAML: {exc}") from exc


def _read_yaml(path: str | Path) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{Path(path)}: expected a YAML mapping")
    return data


def load_camera_info(path: str | Path) -> CameraIntrinsics:
    return CameraIntrinsics.from_dict(_read_yaml(path), source=str(path))


def save_camera_info(path: str | Path, intrinsics: CameraIntrinsics) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(intrinsics.to_dict(), sort_keys=False))


def load_extrinsics(path: str | Path) -> Extrinsics:
    return Extrinsics.from_dict(_read_yaml(path), source=str(path))


def save_extrinsics(path: str | Path, extrinsics: Extrinsics) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(extrinsics.to_dict(), sort_keys=False))
