"""ros2 launch pld_bringup robot.launch.py [robot_ip:=172.16.0.2] [task_config:=...] ...

The Franka workstation graph; the node list comes from graphs/robot.yaml, the same file
`pld-launch robot` runs (CI: `pld-launch robot robot_ip:=127.0.0.1 realtime:=ignore` against
franka-sim).
"""

from pld_bringup.ros_launch import graph_launch_description


def generate_launch_description():
    return graph_launch_description("robot")
