"""Config dataclasses <-> ROS parameters, on a real in-process rclpy node."""

from dataclasses import dataclass

import pytest
import rclpy
from rclpy.parameter import Parameter

from pld_nodes.core.config import ConfigError
from pld_nodes.ros.params import declare_config


@dataclass(frozen=True)
class DemoConfig:
    names: tuple[str, ...]
    rate_hz: float = 20.0
    steps: int = 3
    enabled: bool = True
    gains: tuple[float, ...] = ()
    label: str = "x"

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")


@pytest.fixture
def make_node(ros_domain: int):
    contexts = []

    def make(**overrides):
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=ros_domain)
        contexts.append(ctx)
        params = [Parameter(k, value=v) for k, v in overrides.items()]
        return rclpy.create_node("cfg_test", context=ctx, parameter_overrides=params)

    yield make
    for ctx in contexts:
        ctx.try_shutdown()


def test_defaults_and_overrides(make_node) -> None:
    node = make_node(names=["a", "b"], rate_hz=50.0, gains=[1.0, 2.5])
    cfg = declare_config(node, DemoConfig)
    assert cfg == DemoConfig(("a", "b"), 50.0, 3, True, (1.0, 2.5), "x")
    assert node.get_parameter("steps").value == 3  # every field is a visible parameter


def test_integer_given_for_float_is_accepted(make_node) -> None:
    cfg = declare_config(make_node(names=["a"], rate_hz=10), DemoConfig)
    assert cfg.rate_hz == 10.0 and isinstance(cfg.rate_hz, float)


def test_missing_required_and_invalid_values_are_config_errors(make_node) -> None:
    with pytest.raises(ConfigError, match="required parameter 'names'"):
        declare_config(make_node(), DemoConfig)
    with pytest.raises(ConfigError, match=r"rate_hz must be > 0, got -1\.0"):
        declare_config(make_node(names=["a"], rate_hz=-1.0), DemoConfig)
    with pytest.raises(ConfigError, match="parameter 'steps' must be int, got str 'three'"):
        declare_config(make_node(names=["a"], steps="three"), DemoConfig)
    with pytest.raises(ConfigError, match="parameter 'enabled' must be bool, got int 1"):
        declare_config(make_node(names=["a"], enabled=1), DemoConfig)
    with pytest.raises(ConfigError, match="parameter 'names' must be a list"):
        declare_config(make_node(names="a"), DemoConfig)


def test_empty_list_in_a_parameter_file_means_empty(ros_domain: int, tmp_path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    names: [a]\n    gains: []\n")
    ctx = rclpy.Context()
    rclpy.init(
        args=["x", "--ros-args", "--params-file", str(params)], context=ctx, domain_id=ros_domain
    )
    try:
        node = rclpy.create_node("cfg_file_test", context=ctx)
        assert declare_config(node, DemoConfig).gains == ()
    finally:
        ctx.try_shutdown()
