"""ros2 launch pld_bringup sim_pld.launch.py [mode:=hybrid] [episodes:=20] [store:=...] ...

The node list comes from graphs/sim_pld.yaml, the same file `pld-launch sim_pld` runs.
"""

from pld_bringup.ros_launch import graph_launch_description


def generate_launch_description():
    return graph_launch_description("sim_pld")
