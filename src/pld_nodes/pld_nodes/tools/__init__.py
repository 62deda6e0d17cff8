"""Command-line tools of the stack (ROS-free): data collection, training, export, serving."""
