"""PLD deployment stack.

``pld_nodes.core`` holds every algorithm as plain Python (no rclpy import, unit-tested without
ROS); ``pld_nodes.ros`` holds message conversions and QoS shared by the node adapters
(``pld_nodes.<name>_node``), which only map parameters and messages onto the core.
"""

__version__ = "0.1.0"
