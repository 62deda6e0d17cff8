"""ros2 launch pld_bringup sim.launch.py [task:=lift] [step_mode:=realtime] ...

The node list comes from graphs/sim.yaml, the same file `pld-launch sim` runs.
"""

from pld_bringup.ros_launch import graph_launch_description


def generate_launch_description():
    return graph_launch_description("sim")
