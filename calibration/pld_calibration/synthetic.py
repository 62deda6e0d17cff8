"""Synthetic calibration sessions rendered with MuJoCo, with exactly known ground truth.

The scene (built here as MJCF) has a table, the ChArUco board as a textured plane and a camera.
eye_in_hand: the camera rides on a mocap "hand" at ``hand_camera``; the board lies on the
table. eye_to_hand: the camera is static at ``world_camera`` and the board is held by the hand
at ``hand_board``. The base frame is MuJoCo's world frame.

Ground truth: MuJoCo renders an ideal pinhole with focal length ``0.5 * h / tan(fovy / 2)`` and
its optical axis through the image centre, i.e. ``((w - 1) / 2, (h - 1) / 2)`` in OpenCV's
pixel-centre convention (measured: ``tests/calibration/test_synthetic.py``); a MuJoCo camera
looks along its -z with +y up, so the optical frame is the camera frame rotated by
diag(1, -1, -1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from pld_calibration import CalibrationError
from pld_calibration.board import BoardSpec
from pld_calibration.session import Session
from pld_calibration.transforms import invert, make, rotation_angle_deg, to_pos_quat
from pld_nodes.core.camera.calibration_files import CameraIntrinsics, Extrinsics

__all__ = [
    "GroundTruth",
    "SynthConfig",
    "load_ground_truth",
    "render_session",
]

FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera frame <-> OpenCV optical frame
GROUND_TRUTH_FILE = "ground_truth.yaml"


def _pose(xyz: tuple[float, float, float], euler_xyz_deg: tuple[float, float, float]) -> np.ndarray:
    return make(Rotation.from_euler("xyz", euler_xyz_deg, degrees=True).as_matrix(), xyz)


def _look_at(eye: np.ndarray, target: np.ndarray, roll_rad: float) -> np.ndarray:
    """Optical frame at ``eye`` with z towards ``target``, x level with the world, then rolled."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    r = np.column_stack([x, y, z]) @ Rotation.from_rotvec([0, 0, roll_rad]).as_matrix()
    return make(r, eye)


@dataclass(frozen=True)
class SynthConfig:
    """What to render. Poses are (xyz m, xyz Euler deg) of the optical frame / board frame."""

    mode: str = "eye_in_hand"
    views: int = 20
    width: int = 640
    height: int = 480
    fovy_deg: float = 45.0
    seed: int = 0
    board: BoardSpec = field(default_factory=BoardSpec)
    px_per_square: int = 240  # texture resolution: sharp corners at close range
    board_center: tuple[float, float, float] = (0.5, 0.0, 0.0)  # eye_in_hand: on the table
    hand_camera: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.05, -0.02, 0.06),
        (-12.0, 6.0, 90.0),
    )
    world_camera_eye: tuple[float, float, float] = (1.05, 0.35, 0.65)  # eye_to_hand camera
    workspace_center: tuple[float, float, float] = (0.5, 0.0, 0.3)  # where it looks
    hand_board: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.02, 0.01, 0.09),
        (4.0, -3.0, 30.0),
    )
    distance_m: tuple[float, float] = (0.35, 0.6)  # camera-board distance range
    tilt_deg: tuple[float, float] = (15.0, 40.0)  # view ray vs board normal: tilt fixes f
    margin_px: int = 15  # every corner at least this far inside the image

    def __post_init__(self) -> None:
        if self.mode not in ("eye_in_hand", "eye_to_hand"):
            raise CalibrationError(
                f"synthetic mode must be eye_in_hand or eye_to_hand, got {self.mode!r}"
            )
        if self.views < 1 or self.width < 64 or self.height < 64:
            raise CalibrationError(
                f"need views >= 1 and an image of at least 64x64, got {self.views} views "
                f"{self.width}x{self.height}"
            )

    def intrinsics(self) -> CameraIntrinsics:
        return CameraIntrinsics.pinhole(self.width, self.height, self.fovy_deg, "synth")


@dataclass(frozen=True)
class GroundTruth:
    """What a calibration of a synthetic session must recover."""

    intrinsics: CameraIntrinsics
    hand_eye: Extrinsics  # eye_in_hand: ee -> optical; eye_to_hand: base -> optical
    board: Extrinsics  # eye_in_hand: base -> board; eye_to_hand: ee -> board

    def intrinsics_errors(self, estimate: CameraIntrinsics) -> dict[str, float]:
        """fx, fy errors in percent and cx, cy errors in pixels."""
        k, g = estimate.k, self.intrinsics.k
        return {
            "fx_pct": float(100.0 * (k[0, 0] / g[0, 0] - 1.0)),
            "fy_pct": float(100.0 * (k[1, 1] / g[1, 1] - 1.0)),
            "cx_px": float(k[0, 2] - g[0, 2]),
            "cy_px": float(k[1, 2] - g[1, 2]),
        }

    def hand_eye_errors(self, estimate: np.ndarray) -> dict[str, float]:
        """Translation (mm) and rotation (deg) between an estimated hand-eye X and the truth."""
        diff = invert(self.hand_eye.as_matrix()) @ estimate
        return {
            "translation_mm": float(1e3 * np.linalg.norm(diff[:3, 3])),
            "rotation_deg": rotation_angle_deg(diff[:3, :3]),
        }


def load_ground_truth(session_dir: str | Path) -> GroundTruth | None:
    """The session's ground truth, or None for a real (non-synthetic) session."""
    path = Path(session_dir) / GROUND_TRUTH_FILE
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return GroundTruth(
        intrinsics=CameraIntrinsics.from_dict(data["intrinsics"], source=str(path)),
        hand_eye=Extrinsics.from_dict(data["hand_eye"], source=str(path)),
        board=Extrinsics.from_dict(data["board"], source=str(path)),
    )


def _plane_board(board: BoardSpec) -> np.ndarray:
    """Board frame in the textured plane's frame (texture top-left at -x, +y; seen from +z)."""
    w, h = board.size_m
    return make(FLIP_YZ, (-w / 2, h / 2, 0.0))


def _mjcf(cfg: SynthConfig, tex_w: int, tex_h: int) -> str:
    w, h = cfg.board.size_m
    margin = 0.5 * cfg.board.square_length_m
    plane_size = f"{w / 2 + margin} {h / 2 + margin} 0.01"
    board_geom = (
        f'<geom name="board" type="plane" size="{plane_size}" material="board" '
        'contype="0" conaffinity="0"/>'
    )
    if cfg.mode == "eye_in_hand":
        r_cam = _pose(*cfg.hand_camera)[:3, :3] @ FLIP_YZ
        q = Rotation.from_matrix(r_cam).as_quat(scalar_first=True)
        cam = _vec(cfg.hand_camera[0])
        hand_body = (
            f'<body name="hand" mocap="true"><camera name="cam" pos="{cam}" quat="{_vec(q)}" '
            f'fovy="{cfg.fovy_deg}"/></body>'
        )
        board_body = f'<body name="board" pos="{_vec(cfg.board_center)}">{board_geom}</body>'
    else:
        t_world_cam = _static_camera(cfg)
        q = Rotation.from_matrix(t_world_cam[:3, :3] @ FLIP_YZ).as_quat(scalar_first=True)
        t_hand_plane = _pose(*cfg.hand_board) @ invert(_plane_board(cfg.board))
        pq = Rotation.from_matrix(t_hand_plane[:3, :3]).as_quat(scalar_first=True)
        hand_body = (
            f'<body name="hand" mocap="true"><geom type="plane" size="{plane_size}" '
            f'material="board" pos="{_vec(t_hand_plane[:3, 3])}" quat="{_vec(pq)}" '
            'contype="0" conaffinity="0"/></body>'
        )
        board_body = (
            f'<camera name="cam" pos="{_vec(t_world_cam[:3, 3])}" quat="{_vec(q)}" '
            f'fovy="{cfg.fovy_deg}"/>'
        )
    return f"""<mujoco model="pld_calibration_synth">
  <visual>
    <global offwidth="{cfg.width}" offheight="{cfg.height}"/>
    <quality offsamples="8"/>
    <headlight ambient="0.55 0.55 0.55" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="board" type="2d" file="board.png" width="{tex_w}" height="{tex_h}"/>
    <material name="board" texture="board" texrepeat="1 1" texuniform="false"
              specular="0" shininess="0" reflectance="0"/>
  </asset>
  <worldbody>
    <geom name="table" type="box" size="0.6 0.6 0.02" pos="0.5 0 -0.021" rgba="0.45 0.35 0.25 1"/>
    {board_body}
    {hand_body}
  </worldbody>
</mujoco>"""


def _vec(values: Any) -> str:
    return " ".join(f"{float(v):.10g}" for v in values)


def _static_camera(cfg: SynthConfig) -> np.ndarray:
    return _look_at(np.array(cfg.world_camera_eye), np.array(cfg.workspace_center), 0.0)


def _visible(k: np.ndarray, t_cam_board: np.ndarray, corners: np.ndarray, cfg: SynthConfig) -> bool:
    pts = t_cam_board[:3, :3] @ corners.T + t_cam_board[:3, 3:4]
    if np.any(pts[2] <= 0.05):
        return False
    uv = (k @ pts)[:2] / pts[2]
    m = cfg.margin_px
    return bool(
        np.all((uv[0] >= m) & (uv[0] <= cfg.width - 1 - m))
        and np.all((uv[1] >= m) & (uv[1] <= cfg.height - 1 - m))
    )


def _sample_view(
    cfg: SynthConfig, rng: np.random.Generator, t_world_board: np.ndarray
) -> np.ndarray:
    """A camera pose (T_world_optical) looking at the board from a random direction."""
    w, h = cfg.board.size_m
    center = t_world_board[:3, :3] @ np.array([w / 2, h / 2, 0.0]) + t_world_board[:3, 3]
    normal = -t_world_board[:3, 2]  # the printed side faces -z of the board frame
    tilt = np.radians(rng.uniform(*cfg.tilt_deg))
    axis = np.cross(normal, rng.normal(size=3))
    direction = Rotation.from_rotvec(tilt * axis / np.linalg.norm(axis)).apply(normal)
    eye = center + rng.uniform(*cfg.distance_m) * direction
    target = center + rng.uniform(-0.1, 0.1, size=3)  # board off-centre: covers the image
    # Any roll: the tilt axis then takes every direction in the image (decouples f from c).
    return _look_at(eye, target, rng.uniform(-np.pi, np.pi))


def _sample_board(
    cfg: SynthConfig, rng: np.random.Generator, t_world_cam: np.ndarray
) -> np.ndarray:
    """A board pose (T_world_board) in front of the static camera, facing it within the tilt."""
    w, h = cfg.board.size_m
    distance = rng.uniform(*cfg.distance_m)
    offset = rng.uniform(-0.06, 0.06, size=2)
    center_cam = np.array([offset[0], offset[1], distance])
    tilt = np.radians(rng.uniform(*cfg.tilt_deg))
    axis_angle = rng.uniform(0, 2 * np.pi)
    # Board z (into the board) along the camera's z, tilted, then spun about its normal.
    r = (
        Rotation.from_rotvec(tilt * np.array([np.cos(axis_angle), np.sin(axis_angle), 0.0]))
        * Rotation.from_rotvec([0.0, 0.0, rng.uniform(-np.pi / 4, np.pi / 4)])
    ).as_matrix()
    origin = center_cam - r @ np.array([w / 2, h / 2, 0.0])
    return t_world_cam @ make(r, origin)


def render_session(cfg: SynthConfig, out: str | Path, progress: bool = False) -> Session:
    """Render ``cfg.views`` views into a session directory plus ``ground_truth.yaml``."""
    import mujoco

    out = Path(out)
    if (out / "session.yaml").exists():
        raise CalibrationError(f"{out} already holds a session; choose an empty directory")
    texture = cfg.board.render(cfg.px_per_square, margin_px=cfg.px_per_square // 2)
    png = cv2.imencode(".png", texture)[1].tobytes()
    xml = _mjcf(cfg, texture.shape[1], texture.shape[0])
    model = mujoco.MjModel.from_xml_string(xml, assets={"board.png": png})
    data = mujoco.MjData(model)
    k = cfg.intrinsics().k
    corners = cfg.board.corner_points()
    rng = np.random.default_rng(cfg.seed)
    t_hand_opt = _pose(*cfg.hand_camera)
    t_hand_board = _pose(*cfg.hand_board)
    t_world_board = make(np.eye(3), cfg.board_center) @ _plane_board(cfg.board)
    t_world_cam = _static_camera(cfg)
    session = Session(
        root=out,
        board=cfg.board,
        camera="synth",
        mode=cfg.mode,
        base_frame="world",
        ee_frame="hand",
    )
    renderer = mujoco.Renderer(model, cfg.height, cfg.width)
    try:
        indices = range(cfg.views)
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc=f"rendering {cfg.mode}", unit="view", leave=False)
        for _ in indices:
            for _attempt in range(1000):
                if cfg.mode == "eye_in_hand":
                    t_world_opt = _sample_view(cfg, rng, t_world_board)
                    t_world_hand = t_world_opt @ invert(t_hand_opt)
                    t_cam_board = invert(t_world_opt) @ t_world_board
                else:
                    t_world_b = _sample_board(cfg, rng, t_world_cam)
                    t_world_hand = t_world_b @ invert(t_hand_board)
                    t_cam_board = invert(t_world_cam) @ t_world_b
                if _visible(k, t_cam_board, corners, cfg):
                    break
            else:
                raise CalibrationError("could not place the board in view: check the geometry")
            data.mocap_pos[0] = t_world_hand[:3, 3]
            data.mocap_quat[0] = Rotation.from_matrix(t_world_hand[:3, :3]).as_quat(
                scalar_first=True
            )
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera="cam")
            session.add_sample(renderer.render(), to_pos_quat(t_world_hand))
    finally:
        renderer.close()
    session.save()
    _save_ground_truth(cfg, out, t_hand_opt, t_world_cam, t_world_board, t_hand_board)
    return session


def _save_ground_truth(
    cfg: SynthConfig,
    out: Path,
    t_hand_opt: np.ndarray,
    t_world_cam: np.ndarray,
    t_world_board: np.ndarray,
    t_hand_board: np.ndarray,
) -> None:
    optical = "synth_optical_frame"
    if cfg.mode == "eye_in_hand":
        hand_eye = Extrinsics.from_matrix(t_hand_opt, "hand", optical, source="synthetic")
        board = Extrinsics.from_matrix(t_world_board, "world", "board", source="synthetic")
    else:
        hand_eye = Extrinsics.from_matrix(t_world_cam, "world", optical, source="synthetic")
        board = Extrinsics.from_matrix(t_hand_board, "hand", "board", source="synthetic")
    data = {
        "intrinsics": cfg.intrinsics().to_dict(),
        "hand_eye": hand_eye.to_dict(),
        "board": board.to_dict(),
        "config": {
            "mode": cfg.mode,
            "views": cfg.views,
            "seed": cfg.seed,
            "fovy_deg": cfg.fovy_deg,
        },
    }
    (out / GROUND_TRUTH_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
