"""ament_python package: the PLD core (ROS-free) and its node adapters."""

from setuptools import find_packages, setup

PACKAGE = "pld_nodes"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    package_data={
        PACKAGE: [
            "assets/base_policies/*/*.json",
            "assets/base_policies/*/*.safetensors",
            "assets/base_policies/README.md",
        ]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="PLD stack maintainers",
    maintainer_email="pld-stack@example.org",
    description="PLD core algorithms (ROS-free) and the ROS 2 node adapters of the stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "health_monitor_node = pld_nodes.health_monitor_node:main",
            "vla_node = pld_nodes.vla_node:main",
            "residual_node = pld_nodes.residual_node:main",
            "learner_node = pld_nodes.learner_node:main",
            "arbiter_node = pld_nodes.arbiter_node:main",
            "episode_manager_node = pld_nodes.episode_manager_node:main",
            "recorder_node = pld_nodes.recorder_node:main",
            "safety_monitor_node = pld_nodes.safety_monitor_node:main",
            "franka_driver_node = pld_nodes.franka_driver_node:main",
            "camera_node = pld_nodes.camera_node:main",
            "pld-vla = pld_nodes.tools.vla:main",
            "pld-residual = pld_nodes.tools.residual:main",
            "pld-compare = pld_nodes.tools.compare:main",
        ],
    },
)
