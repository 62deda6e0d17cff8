"""The observation-dict key mapping and PolicySpec <-> metadata conversion."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec
from pld_nodes.core.serving.msgpack_numpy import packb, unpackb
from pld_nodes.core.serving.observation_keys import ObservationError, ObservationKeys
from pld_nodes.core.serving.protocol import (
    OpenPiProtocolError,
    spec_from_metadata,
    spec_to_metadata,
)

ObsFactory = Callable[..., PolicyObservation]
SPEC = PolicySpec(name="keys", image_keys=("agentview", "wrist"), image_size=(8, 8), proprio_dim=16)


def test_default_mapping(obs_factory: ObsFactory) -> None:
    obs = obs_factory(spec=SPEC)
    wire = ObservationKeys().encode(obs)
    assert sorted(wire) == [
        "observation/images/agentview",
        "observation/images/wrist",
        "observation/state",
        "prompt",
    ]
    back = ObservationKeys().decode(unpackb(packb(wire)), SPEC)
    np.testing.assert_array_equal(back.proprio, obs.proprio)
    assert back.proprio.dtype == np.float64 and back.instruction == obs.instruction
    for cam in SPEC.image_keys:
        np.testing.assert_array_equal(back.images[cam], obs.images[cam])


def test_libero_preset_matches_openpi_example_keys(obs_factory: ObsFactory) -> None:
    keys = ObservationKeys.libero(primary="agentview", wrist="wrist")
    wire = keys.encode(obs_factory(spec=SPEC))
    assert set(wire) == {
        "observation/image",
        "observation/wrist_image",
        "observation/state",
        "prompt",
    }
    assert keys.decode(wire, SPEC).images.keys() == {"agentview", "wrist"}


def test_nested_lookup_and_extra_keys_ignored(obs_factory: ObsFactory) -> None:
    obs = obs_factory(spec=SPEC)
    nested = {
        "observation": {"state": obs.proprio, "images": dict(obs.images)},
        "prompt": b"bytes prompt",
        "something/else": 1,
    }
    back = ObservationKeys().decode(nested, SPEC)
    assert back.instruction == "bytes prompt"
    np.testing.assert_array_equal(back.images["wrist"], obs.images["wrist"])


def test_object_state_mapping(obs_factory: ObsFactory) -> None:
    spec = dataclasses.replace(SPEC, uses_object_state=True, object_state_dim=3)
    obs = dataclasses.replace(obs_factory(spec=spec), object_state=np.ones(3))
    wire = ObservationKeys().encode(obs)
    assert "observation/object_state" in wire
    np.testing.assert_array_equal(ObservationKeys().decode(wire, spec).object_state, np.ones(3))
    del wire["observation/object_state"]
    with pytest.raises(ObservationError, match="object_state"):
        ObservationKeys().decode(wire, spec)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda w: w.pop("observation/state"), "lacks 'observation/state'"),
        (lambda w: w.pop("prompt"), "lacks 'prompt'"),
        (lambda w: w.update(prompt=3), "must be a string"),
        (lambda w: w.update({"observation/state": ["a"] * 16}), "must be numeric"),
        (lambda w: w.update({"observation/state": [[1], [1, 2]]}), "not an array"),
        (lambda w: w.update({"observation/state": np.zeros(3)}), "proprio shape"),
        (lambda w: w.update({"observation/state": np.full(16, np.nan)}), "NaN"),
        (lambda w: w.pop("observation/images/wrist"), "lacks 'observation/images/wrist'"),
        (
            lambda w: w.update({"observation/images/wrist": np.zeros((4, 4, 3), np.uint8)}),
            r"\(4, 4, 3\), expected uint8 \(8, 8, 3\)",
        ),
    ],
)
def test_decode_errors_are_clear(obs_factory: ObsFactory, mutate: Callable, message: str) -> None:
    wire = ObservationKeys().encode(obs_factory(spec=SPEC))
    mutate(wire)
    with pytest.raises(ObservationError, match=message):
        ObservationKeys().decode(wire, SPEC)


def test_default_prompt_and_non_dict() -> None:
    spec = PolicySpec(name="s", proprio_dim=2)
    obs = ObservationKeys().decode({"observation/state": [1, 2]}, spec, default_prompt="go")
    assert obs.instruction == "go"
    with pytest.raises(ObservationError, match="must be a dict"):
        ObservationKeys().decode([1, 2], spec)


def test_keys_metadata_round_trip() -> None:
    keys = ObservationKeys.libero()
    assert ObservationKeys.from_metadata(unpackb(packb(keys.to_metadata()))) == keys
    with pytest.raises(ValueError, match="images"):
        ObservationKeys.from_metadata({"images": {"a": 1}})


def test_spec_metadata_round_trip() -> None:
    spec = dataclasses.replace(SPEC, version=4, step_period_s=0.1)
    md = unpackb(packb(spec_to_metadata(spec)))
    assert md["image_keys"] == ["agentview", "wrist"]
    assert spec_from_metadata(md, expected=None, default_name="x") == spec


def test_spec_from_plain_openpi_metadata_needs_expected() -> None:
    with pytest.raises(OpenPiProtocolError, match="pass spec=PolicySpec"):
        spec_from_metadata({"reset_pose": [0.0]}, expected=None, default_name="x")
    got = spec_from_metadata({"version": 2}, expected=SPEC, default_name="x")
    assert got == dataclasses.replace(SPEC, version=2)


@pytest.mark.parametrize(
    "md",
    [
        {"action_dim": "7"},
        {"action_dim": True},
        {"image_size": [8]},
        {"image_keys": "agentview"},
        {"step_period_s": "fast"},
        {"uses_object_state": 1},
    ],
)
def test_spec_metadata_type_errors(md: dict) -> None:
    with pytest.raises(OpenPiProtocolError):
        spec_from_metadata(md, expected=SPEC, default_name="x")


def test_invalid_spec_in_metadata() -> None:
    md = {**spec_to_metadata(SPEC), "chunk_horizon": 0}
    with pytest.raises(OpenPiProtocolError, match="invalid spec"):
        spec_from_metadata(md, expected=None, default_name="x")
