"""ament_python package: the operator panel (rqt plugin + standalone app)."""

from setuptools import find_packages, setup

PACKAGE = "pld_operator_panel"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "plugin.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="PLD stack maintainers",
    maintainer_email="pld-stack@example.org",
    description="Operator panel of the PLD stack (rqt plugin and standalone Qt app).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pld-operator-panel = pld_operator_panel.app:main",
            "pld-operator-panel-screenshot = pld_operator_panel.screenshot:main",
        ],
    },
)
