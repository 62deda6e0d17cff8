"""ros2 launch pld_bringup sim_vla.launch.py [task:=lift] [vla_config:=...] ...

The node list comes from graphs/sim_vla.yaml, the same file `pld-launch sim_vla` runs.
"""

from pld_bringup.ros_launch import graph_launch_description


def generate_launch_description():
    return graph_launch_description("sim_vla")
