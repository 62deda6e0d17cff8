"""Camera capture and calibration data, without ROS: frame sources, capture workers, files."""
