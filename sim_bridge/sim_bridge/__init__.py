"""Simulated Franka tasks (ROS-free, in ``sim_bridge.envs``) and the sim_bridge node adapter."""
