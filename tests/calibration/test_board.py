"""Board spec: validation, YAML round trip, print scale, and detection on the ideal image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pld_calibration import CalibrationError
from pld_calibration.board import BoardSpec, load_board, save_board
from pld_calibration.detect import Detection, detect_board


def test_yaml_round_trip(tmp_path: Path) -> None:
    board = BoardSpec(9, 6, 0.03, 0.022, "DICT_6X6_250")
    save_board(tmp_path / "board.yaml", board)
    assert load_board(tmp_path / "board.yaml") == board


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"marker_length_m": 0.05}, "marker_length_m < square_length_m"),
        ({"dictionary": "DICT_9X9_1"}, "unknown ArUco dictionary"),
        ({"squares_x": 20, "squares_y": 20, "dictionary": "DICT_4X4_50"}, "has 50"),
        ({"squares_x": 2}, "at least 3x3"),
    ],
)
def test_invalid_boards_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        BoardSpec(**kwargs)  # type: ignore[arg-type]


def test_board_yaml_without_lengths_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({"squares_x": 7, "squares_y": 5, "dictionary": "DICT_5X5_100"}))
    with pytest.raises(CalibrationError, match="square_length_m"):
        load_board(path)


def test_print_image_scale() -> None:
    board = BoardSpec()
    image, square = board.print_image(dpi=300, margin_m=0.01)
    px_per_square = round(0.04 / 0.0254 * 300)
    assert abs(square - 0.04) < 0.5 * 0.0254 / 300
    assert image.shape[1] == 7 * px_per_square + 2 * round(0.01 / 0.0254 * 300)


def test_detection_on_the_ideal_image_matches_the_board_frame() -> None:
    board = BoardSpec()
    found = detect_board(board.render(100, margin_px=50), board)
    assert isinstance(found, Detection)
    assert len(found.ids) == board.corner_count
    # 100 px per square, 50 px margin: corner (x, y) m sits at pixel 50 + 2500 * (x, y) - 0.5.
    expected = 50 + 2500 * found.object_points[:, :2] - 0.5
    np.testing.assert_allclose(found.image_points, expected, atol=0.2)
    np.testing.assert_allclose(found.object_points, board.corner_points()[found.ids])


def test_blank_image_is_reported_not_raised() -> None:
    reason = detect_board(np.full((480, 640, 3), 255, np.uint8), BoardSpec(), "blank")
    assert isinstance(reason, str) and "0 corners" in reason
