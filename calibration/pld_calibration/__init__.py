"""Camera intrinsics and hand-eye calibration from ChArUco views (``pld-calibrate``).

Results are written in the stack's own formats (``pld_nodes.core.camera.calibration_files``):
ROS camera_info YAML for intrinsics and ``pld-extrinsics/1`` YAML for hand-eye transforms.
"""

from pld_nodes.core.config import ConfigError

__all__ = ["CalibrationError"]


class CalibrationError(ConfigError):
    """Bad calibration input (session, board, too few usable views): reported as one line."""
