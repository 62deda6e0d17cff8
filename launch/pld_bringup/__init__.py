"""Bring-up of the PLD stack: graph descriptions, launch files, configs, and the process launcher.

``share_dir()`` is where ``graphs/``, ``config/`` and ``launch/`` live: the installed share
directory after ``colcon build``, or this package's source folder in a pip/venv setup.
"""

from __future__ import annotations

from pathlib import Path

from pld_bringup.graph import Graph, GraphError, load_graph

PACKAGE = "pld_bringup"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """Directory holding graphs/, config/ and launch/ of pld_bringup."""
    if (_SOURCE_ROOT / "graphs").is_dir():
        return _SOURCE_ROOT
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE))


def available_graphs() -> dict[str, Path]:
    return {p.stem: p for p in sorted((share_dir() / "graphs").glob("*.yaml"))}


def find_graph(name_or_path: str) -> Graph:
    """Load a graph by name (``sim``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        return load_graph(path)
    graphs = available_graphs()
    if name_or_path not in graphs:
        raise GraphError(
            f"unknown graph {name_or_path!r}; available: {sorted(graphs)} "
            "(or pass a path to a graph .yaml)"
        )
    return load_graph(graphs[name_or_path])


__all__ = ["Graph", "GraphError", "available_graphs", "find_graph", "load_graph", "share_dir"]
