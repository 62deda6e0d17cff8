"""Turn a graph description into a ROS 2 LaunchDescription (workstation, ``ros2 launch``).

Only imported by ``launch/*.launch.py``: ``launch``/``launch_ros`` exist with a system ROS 2
install, not on PyPI. The node list comes from the same ``graphs/<name>.yaml`` that
``pld-launch`` runs, through :meth:`NodeLaunch.launch_ros_kwargs`.
"""

from __future__ import annotations

from typing import Any

from pld_bringup import find_graph, share_dir


def graph_launch_description(graph_name: str) -> Any:
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    graph = find_graph(graph_name)

    def nodes(context: Any) -> list[Any]:
        values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
        actions = []
        for node in graph.resolve(values, share_dir()):
            on_exit = (
                [Shutdown(reason=f"required node {node.name} exited")] if node.required else None
            )
            actions.append(Node(**node.launch_ros_kwargs(), on_exit=on_exit))
        return actions

    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
        if a.default is not None
        else DeclareLaunchArgument(a.name, description=a.description)
        for a in graph.arguments.values()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
