"""openpi websocket protocol constants, errors, and PolicySpec <-> server-metadata conversion.

The openpi protocol (``openpi_client.websocket_client_policy`` / ``openpi_server``):

1. Client opens a websocket (no compression, no message size limit), optionally sending the
   header ``Authorization: Api-Key <key>``.
2. Server sends one binary msgpack-numpy frame: a free-form metadata dict.
3. Per request the client sends a binary frame with the observation dict; the server answers
   with one binary frame (a dict holding at least ``"actions"`` and ``"server_timing"``) or,
   on failure, a *text* frame carrying the error message (openpi then closes with 1011).
4. ``GET /healthz`` on the same port answers HTTP 200 ``OK``.

A plain openpi server's metadata does not describe the policy (it is the training config's
``policy_metadata``, often ``{}``); our server adds the :class:`PolicySpec` fields at top level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pld_nodes.core.policy.interface import PolicySpec

API_KEY_HEADER = "Authorization"
API_KEY_SCHEME = "Api-Key"
HEALTH_PATH = "/healthz"
PROTOCOL_NAME = "openpi-websocket"
PLD_PROTOCOL_VERSION = 1

SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PolicySpec))
REQUIRED_SPEC_FIELDS = (
    "action_dim",
    "chunk_horizon",
    "step_period_s",
    "proprio_dim",
    "image_keys",
    "image_size",
)
"""Fields that must be in the metadata when the caller gives no spec (no silent defaults)."""

RESERVED_METADATA_KEYS = frozenset(
    (*SPEC_FIELDS, "protocol", "pld_protocol_version", "observation_keys")
)


class OpenPiProtocolError(RuntimeError):
    """The peer does not speak the protocol we expect (bad frame type, metadata or reply)."""


class PolicyServerError(RuntimeError):
    """The server answered a request with an error message (a text frame)."""


class PolicyAuthError(ConnectionError):
    """The server refused our API key (HTTP 401/403); retrying will not help."""


def api_key_header(api_key: str) -> str:
    """The ``Authorization`` header value the official openpi client sends."""
    return f"{API_KEY_SCHEME} {api_key}"


def spec_to_metadata(spec: PolicySpec) -> dict[str, Any]:
    """PolicySpec as plain msgpack types (lists, not tuples) so any openpi client can read it."""
    out: dict[str, Any] = dataclasses.asdict(spec)
    out["image_keys"] = list(spec.image_keys)
    out["image_size"] = list(spec.image_size)
    return out


def _int(md: Mapping[str, Any], key: str) -> int:
    value = md[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenPiProtocolError(f"metadata {key!r} must be an int, got {value!r}")
    return value


def _parse_spec_fields(md: Mapping[str, Any]) -> dict[str, Any]:
    """Typed PolicySpec keyword arguments for every spec field present in ``md``."""
    out: dict[str, Any] = {}
    for key in ("action_dim", "chunk_horizon", "proprio_dim", "object_state_dim", "version"):
        if key in md:
            out[key] = _int(md, key)
    if "name" in md:
        if not isinstance(md["name"], str):
            raise OpenPiProtocolError(f"metadata 'name' must be a string, got {md['name']!r}")
        out["name"] = md["name"]
    if "step_period_s" in md:
        value = md["step_period_s"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OpenPiProtocolError(f"metadata 'step_period_s' must be a number, got {value!r}")
        out["step_period_s"] = float(value)
    if "uses_object_state" in md:
        if not isinstance(md["uses_object_state"], bool):
            raise OpenPiProtocolError("metadata 'uses_object_state' must be a bool")
        out["uses_object_state"] = md["uses_object_state"]
    if "image_keys" in md:
        keys = md["image_keys"]
        if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
            raise OpenPiProtocolError(f"metadata 'image_keys' must be a list of str: {keys!r}")
        out["image_keys"] = tuple(keys)
    if "image_size" in md:
        size = md["image_size"]
        if (
            not isinstance(size, list | tuple)
            or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
        ):
            raise OpenPiProtocolError(f"metadata 'image_size' must be [height, width]: {size!r}")
        out["image_size"] = (size[0], size[1])
    return out


def spec_from_metadata(
    md: Mapping[str, Any], *, expected: PolicySpec | None, default_name: str
) -> PolicySpec:
    """Build the client's PolicySpec from server metadata.

    With ``expected`` (needed for plain openpi servers, whose metadata has no spec), every spec
    field the server does publish must agree with it, except ``name`` (informational) and
    ``version`` (taken from the server). Without it, :data:`REQUIRED_SPEC_FIELDS` must be present.
    """
    fields = _parse_spec_fields(md)
    if expected is not None:
        mismatched = {
            k: (v, getattr(expected, k))
            for k, v in fields.items()
            if k not in ("name", "version") and v != getattr(expected, k)
        }
        if mismatched:
            detail = ", ".join(
                f"{k}: server {s!r} != expected {e!r}" for k, (s, e) in mismatched.items()
            )
            raise OpenPiProtocolError(f"server policy does not match the expected spec ({detail})")
        return dataclasses.replace(expected, version=fields.get("version", expected.version))
    missing = [k for k in REQUIRED_SPEC_FIELDS if k not in fields]
    if missing:
        raise OpenPiProtocolError(
            f"server metadata lacks {missing} (got keys {sorted(map(str, md))}); a plain openpi "
            "server does not describe its policy, so pass spec=PolicySpec(...) to the client"
        )
    fields.setdefault("name", default_name)
    try:
        return PolicySpec(**fields)
    except ValueError as exc:
        raise OpenPiProtocolError(f"server metadata describes an invalid spec: {exc}") from exc
