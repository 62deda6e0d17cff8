"""One description of a ROS graph, read from ``graphs/<name>.yaml``, used by both launchers.

The workstation's ``ros2 launch pld_bringup <graph>.launch.py`` turns it into launch_ros ``Node``
actions (``pld_bringup.ros_launch``); CI and pip users run the same file with the process
launcher (``pld-launch <graph>``, ``pld_bringup.process_launcher``). Both start each node with
the same ``--ros-args`` (node name, namespace, parameter files, overrides, remaps).

File format::

    description: one line shown by ``pld-launch --list``
    arguments:                      # launch arguments, set as name:=value
      task_config: {default: config/tasks/lift.yaml, description: task YAML}
    nodes:
      sim_bridge:                   # the node name (__node)
        package: sim_bridge         # ROS package == Python distribution
        executable: sim_bridge_node # console_scripts entry point of that package
        namespace: ""               # optional
        parameters: [$(arg task_config), config/sim_bridge.yaml]  # optional, in order
        overrides: {rate_hz: 20.0}  # optional, applied after the files
        remappings: {/from: /to}    # optional
        required: true              # optional (default true): its death stops the graph
        enabled: true               # optional; "$(arg x)" allowed ("true"/"false")

Relative parameter paths are looked up next to the graph file first, then in the pld_bringup
share directory (the ``launch/`` folder of the source tree), so ``config/x.yaml`` works for the
shipped graphs and a user's graph can sit beside its own parameter files.
``$(arg name)`` is substituted in every string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ARG_PATTERN = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NODE_KEYS = {
    "package",
    "executable",
    "namespace",
    "parameters",
    "overrides",
    "remappings",
    "required",
    "enabled",
}


class GraphError(ValueError):
    """The graph description or its inputs are wrong; the message says what and where."""


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str | None
    description: str = ""


@dataclass(frozen=True)
class NodeLaunch:
    """A node ready to start: everything substituted and every file checked."""

    name: str
    package: str
    executable: str
    namespace: str = ""
    parameter_files: tuple[Path, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = True

    @property
    def fully_qualified_name(self) -> str:
        ns = self.namespace.strip("/")
        return f"/{ns}/{self.name}" if ns else f"/{self.name}"

    def ros_args(self, overrides_file: Path | None = None) -> list[str]:
        """The ``--ros-args`` a ROS 2 launch passes for this node (overrides as a params file)."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:=/{self.namespace.strip('/')}"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        if self.overrides:
            if overrides_file is None:
                raise GraphError(f"node {self.name!r} has overrides but no overrides file given")
            args += ["--params-file", str(overrides_file)]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args

    def overrides_yaml(self) -> str:
        """Overrides in ROS 2 parameter-file form, for any node name (``/**``)."""
        return yaml.safe_dump({"/**": {"ros__parameters": dict(self.overrides)}}, sort_keys=True)

    def launch_ros_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``launch_ros.actions.Node``, equivalent to :meth:`ros_args`."""
        params: list[Any] = [str(p) for p in self.parameter_files]
        if self.overrides:
            params.append(dict(self.overrides))
        return {
            "package": self.package,
            "executable": self.executable,
            "name": self.name,
            "namespace": self.namespace,
            "parameters": params,
            "remappings": list(self.remappings),
            "output": "screen",
        }


@dataclass(frozen=True)
class Graph:
    """A parsed graph file; :meth:`resolve` substitutes arguments and checks files."""

    name: str
    source: Path
    description: str
    arguments: dict[str, LaunchArgument]
    nodes: dict[str, dict[str, Any]]

    def resolve(self, values: dict[str, str], share: Path) -> list[NodeLaunch]:
        unknown = sorted(set(values) - set(self.arguments))
        if unknown:
            raise GraphError(
                f"{self.source}: unknown argument(s) {unknown}; "
                f"this graph takes {sorted(self.arguments) or 'no arguments'}"
            )
        args = {a.name: a.default for a in self.arguments.values()} | dict(values)
        missing = sorted(k for k, v in args.items() if v is None)
        if missing:
            raise GraphError(
                f"{self.source}: required argument(s) not set: "
                + ", ".join(f"{m}:=<value>" for m in missing)
            )
        launches = []
        for node_name, spec in self.nodes.items():
            where = f"{self.source}: node {node_name!r}"
            spec = _substitute(spec, args, where)
            if not _as_bool(spec.get("enabled", True), f"{where}: enabled"):
                continue
            search = (self.source.parent, share)
            launches.append(_node_launch(node_name, spec, search, where))
        return launches


def load_graph(path: Path) -> Graph:
    """Parse and structurally validate a graph file (no argument substitution yet)."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"graph file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GraphError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise GraphError(f"{path}: expected a mapping with 'nodes', got {type(data).__name__}")
    unknown = sorted(set(data) - {"description", "arguments", "nodes"})
    if unknown:
        raise GraphError(
            f"{path}: unknown top-level key(s) {unknown}; allowed: description, arguments, nodes"
        )
    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        raise GraphError(f"{path}: 'nodes' must be a non-empty mapping of node name -> spec")
    for name, spec in nodes.items():
        _check_node_spec(path, name, spec)
    return Graph(
        name=path.stem,
        source=path,
        description=str(data.get("description", "")),
        arguments=_parse_arguments(path, data.get("arguments") or {}),
        nodes=nodes,
    )


def _parse_arguments(path: Path, raw: Any) -> dict[str, LaunchArgument]:
    if not isinstance(raw, dict):
        raise GraphError(
            f"{path}: 'arguments' must be a mapping of name -> {{default, description}}"
        )
    out = {}
    for name, spec in raw.items():
        if not _NAME_PATTERN.match(str(name)):
            raise GraphError(f"{path}: argument name {name!r} is not a valid identifier")
        spec = spec if isinstance(spec, dict) else {"default": spec}
        default = spec.get("default")
        out[name] = LaunchArgument(
            name, None if default is None else str(default), str(spec.get("description", ""))
        )
    return out


def _check_node_spec(path: Path, name: Any, spec: Any) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise GraphError(f"{path}: node name {name!r} is not a valid ROS node name")
    if not isinstance(spec, dict):
        raise GraphError(f"{path}: node {name!r} must be a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _NODE_KEYS)
    if unknown:
        raise GraphError(
            f"{path}: node {name!r} has unknown key(s) {unknown}; allowed: {sorted(_NODE_KEYS)}"
        )
    for key in ("package", "executable"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise GraphError(f"{path}: node {name!r} needs a non-empty '{key}'")


def _substitute(value: Any, args: dict[str, str | None], where: str) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in args:
                raise GraphError(f"{where}: $(arg {key}) is not a declared argument")
            return str(args[key])

        whole = _ARG_PATTERN.fullmatch(value)
        text = _ARG_PATTERN.sub(repl, value)
        # A value that is exactly one substitution takes the argument's YAML type (20 -> int).
        return yaml.safe_load(text) if whole and text.strip() else text
    if isinstance(value, list):
        return [_substitute(v, args, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, args, where) for k, v in value.items()}
    return value


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise GraphError(f"{where} must be true or false, got {value!r}")


def _node_launch(
    name: str, spec: dict[str, Any], search: tuple[Path, ...], where: str
) -> NodeLaunch:
    files = []
    params = spec.get("parameters") or []
    if not isinstance(params, list):
        raise GraphError(f"{where}: 'parameters' must be a list of YAML files")
    for entry in params:
        files.append(_check_param_file(Path(str(entry)), search, where))
    overrides = spec.get("overrides") or {}
    remaps = spec.get("remappings") or {}
    if not isinstance(overrides, dict) or not isinstance(remaps, dict):
        raise GraphError(f"{where}: 'overrides' and 'remappings' must be mappings")
    return NodeLaunch(
        name=name,
        package=spec["package"],
        executable=spec["executable"],
        namespace=str(spec.get("namespace") or ""),
        parameter_files=tuple(files),
        overrides=dict(overrides),
        remappings=tuple((str(k), str(v)) for k, v in remaps.items()),
        required=_as_bool(spec.get("required", True), f"{where}: required"),
    )


def _check_param_file(path: Path, search: tuple[Path, ...], where: str) -> Path:
    candidates = [path] if path.is_absolute() else [d / path for d in search]
    full = next((c for c in candidates if c.is_file()), None)
    if full is None:
        looked = ", ".join(str(c) for c in candidates)
        raise GraphError(f"{where}: parameter file {path} not found (looked at {looked})")
    try:
        content = yaml.safe_load(full.read_text())
    except yaml.YAMLError as exc:
        raise GraphError(f"{where}: parameter file {full} is not valid YAML: {exc}") from exc
    if not isinstance(content, dict) or not all(
        isinstance(v, dict) and "ros__parameters" in v for v in content.values()
    ):
        raise GraphError(
            f"{where}: parameter file {full} is not a ROS 2 parameter file "
            "(expected '<node name or /**>: {ros__parameters: {...}}')"
        )
    return full.resolve()


def task_config_for(task: str) -> str:
    """The shipped task YAML (safety limits) for a sim task name: Lift or a LIBERO task."""
    return "config/tasks/libero.yaml" if task.startswith("libero") else "config/tasks/lift.yaml"
