"""Where each part of a :class:`PolicyObservation` lives in an openpi observation dict.

openpi has no fixed schema: each policy's input transform reads its own keys. The LIBERO example
sends ``observation/image``, ``observation/wrist_image``, ``observation/state`` and ``prompt``
(flat keys that contain slashes); ALOHA nests ``images/<cam>``. Our default mapping:

===================  ====================================  ==============================
PolicyObservation    wire key (default)                    value
===================  ====================================  ==============================
``proprio``          ``observation/state``                 float array (proprio_dim,)
``images[cam]``      ``observation/images/<cam>``          uint8 (H, W, 3), row 0 = top
``object_state``     ``observation/object_state``          float array, only if present
``instruction``      ``prompt``                            str
===================  ====================================  ==============================

Per-camera overrides (``images={"agentview": "observation/image"}``) cover LIBERO-style servers,
see :meth:`ObservationKeys.libero`. When decoding, a key that is not found flat is also looked
up as a nested path split on ``/`` (so ``images/cam_high`` finds ``{"images": {"cam_high": ..}}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec

_MISSING = object()


class ObservationError(ValueError):
    """An observation dict that cannot be turned into a valid PolicyObservation."""


@dataclass(frozen=True)
class ObservationKeys:
    """The one place that maps PolicyObservation fields to openpi observation-dict keys."""

    state: str = "observation/state"
    prompt: str = "prompt"
    object_state: str = "observation/object_state"
    image_prefix: str = "observation/images/"
    images: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Camera name -> wire key, overriding ``image_prefix + camera``."""

    @classmethod
    def libero(
        cls, primary: str = "agentview", wrist: str = "robot0_eye_in_hand"
    ) -> ObservationKeys:
        """Keys of openpi's LIBERO example (``pi0_libero`` / ``pi05_libero`` checkpoints)."""
        return cls(images={primary: "observation/image", wrist: "observation/wrist_image"})

    def image_key(self, camera: str) -> str:
        return self.images.get(camera, self.image_prefix + camera)

    def encode(self, obs: PolicyObservation) -> dict[str, Any]:
        """The wire dict for ``obs`` (arrays are sent as they are, without copies)."""
        out: dict[str, Any] = {self.state: obs.proprio, self.prompt: obs.instruction}
        for camera, image in obs.images.items():
            out[self.image_key(camera)] = image
        if obs.object_state is not None:
            out[self.object_state] = obs.object_state
        return out

    def decode(
        self, msg: Any, spec: PolicySpec, *, default_prompt: str | None = None
    ) -> PolicyObservation:
        """Parse and validate a received dict against ``spec``; raise ObservationError if bad.

        Proprio and object state become float64 (the layout of ``proprio_vector``); images are
        kept as received (read-only, dtype checked by ``PolicyObservation.validate``). Keys the
        spec does not use are ignored.
        """
        if not isinstance(msg, dict):
            raise ObservationError(f"observation must be a dict, got {type(msg).__name__}")
        proprio = _float_vector(msg, self.state)
        if proprio is None:
            raise ObservationError(f"observation lacks {self.state!r} (proprio)")
        prompt = _lookup(msg, self.prompt)
        if prompt is _MISSING:
            if default_prompt is None:
                raise ObservationError(f"observation lacks {self.prompt!r} (the instruction)")
            prompt = default_prompt
        if isinstance(prompt, bytes):
            prompt = prompt.decode("utf-8", errors="replace")
        if not isinstance(prompt, str):
            raise ObservationError(f"{self.prompt!r} must be a string, got {type(prompt).__name__}")
        images: dict[str, np.ndarray] = {}
        for camera in spec.image_keys:
            key = self.image_key(camera)
            value = _lookup(msg, key)
            if value is _MISSING:
                raise ObservationError(
                    f"observation lacks {key!r} (camera {camera!r}); policy reads "
                    f"{[self.image_key(c) for c in spec.image_keys]}"
                )
            images[camera] = _as_array(value, key)
        object_state = _float_vector(msg, self.object_state)
        if object_state is None and spec.uses_object_state:
            raise ObservationError(f"observation lacks {self.object_state!r} (object state)")
        obs = PolicyObservation(
            proprio=proprio, instruction=prompt, images=images, object_state=object_state
        )
        try:
            obs.validate(spec)
        except ValueError as exc:
            raise ObservationError(f"invalid observation for policy {spec.name!r}: {exc}") from exc
        return obs

    def to_metadata(self) -> dict[str, Any]:
        """The mapping as plain types, published in server metadata so clients can follow it."""
        return {
            "state": self.state,
            "prompt": self.prompt,
            "object_state": self.object_state,
            "image_prefix": self.image_prefix,
            "images": dict(self.images),
        }

    @classmethod
    def from_metadata(cls, md: Mapping[str, Any]) -> ObservationKeys:
        defaults = cls()
        images = md.get("images", {})
        str_fields = ("state", "prompt", "object_state", "image_prefix")
        if not isinstance(images, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in images.items()
        ):
            raise ValueError(f"observation_keys.images must map str to str, got {images!r}")
        values = {k: md.get(k, getattr(defaults, k)) for k in str_fields}
        bad = [k for k, v in values.items() if not isinstance(v, str)]
        if bad:
            raise ValueError(f"observation_keys {bad} must be strings")
        return cls(**values, images=dict(images))


def _lookup(msg: Mapping[str, Any], key: str) -> Any:
    """``msg[key]``, else the nested path ``key.split('/')``, else ``_MISSING``."""
    if key in msg:
        return msg[key]
    node: Any = msg
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _float_vector(msg: Mapping[str, Any], key: str) -> np.ndarray | None:
    """``msg[key]`` as a float64 array, None if absent; ObservationError if not numeric."""
    value = _lookup(msg, key)
    if value is _MISSING:
        return None
    arr = _as_array(value, key)
    if arr.dtype.kind not in "iuf":
        raise ObservationError(f"{key!r} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _as_array(value: Any, key: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise ObservationError(f"{key!r} is not an array: {exc}") from exc
