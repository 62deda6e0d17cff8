"""ament_python package: launch files, graphs, configs and the process launcher."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pld_bringup"


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` (recursively) under share/pld_bringup."""
    entries: dict[str, list[str]] = {}
    for path in glob(f"{folder}/**/*", recursive=True):
        if not path.endswith("/") and "." in path.rsplit("/", 1)[-1]:
            entries.setdefault(f"share/{PACKAGE}/" + path.rsplit("/", 1)[0], []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("graphs"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="PLD stack maintainers",
    maintainer_email="pld-stack@example.org",
    description="Launch files, graphs and configs of the PLD stack; process launcher.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pld-launch = pld_bringup.cli:main",
            "pld-run = pld_bringup.pipeline:main",
            "pld-drive = pld_bringup.drive:main",
        ],
    },
)
