"""ROS-free core of the PLD stack. Nothing under this package may import rclpy or ROS messages."""
