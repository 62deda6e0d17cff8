"""ament_python package: simulated Franka tasks and the sim_bridge node."""

from setuptools import find_packages, setup

PACKAGE = "sim_bridge"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="PLD stack maintainers",
    maintainer_email="pld-stack@example.org",
    description="Simulated Franka tasks (Gymnasium) and the sim_bridge node on the robot's topics.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_bridge_node = sim_bridge.sim_bridge_node:main",
        ],
    },
)
