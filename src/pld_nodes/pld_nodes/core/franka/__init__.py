"""The Franka driver's ROS-free core: kinematics, the 1 kHz joint tracker, the control process
and the shared-memory link between that process and the ROS node (``franka_driver_node``)."""
