"""A :class:`Policy` backed by a remote openpi websocket server (ours or Physical Intelligence's).

The connection is opened eagerly (so :attr:`OpenPiPolicy.spec` is known) and reused for every
``infer``. If it is lost, or a reply times out, or the server answers with an error, the
connection is dropped and the next ``infer`` reconnects (with the same retry/backoff). A
timed-out request is never retried: a late reply could otherwise be paired with the next one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from types import TracebackType
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pld_nodes.core.policy.interface import PolicyObservation, PolicySpec, check_chunk
from pld_nodes.core.serving.msgpack_numpy import MsgpackNumpyError, packb, unpackb
from pld_nodes.core.serving.observation_keys import ObservationKeys
from pld_nodes.core.serving.protocol import (
    API_KEY_HEADER,
    OpenPiProtocolError,
    PolicyAuthError,
    PolicyServerError,
    api_key_header,
    spec_from_metadata,
)

_LOG = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 1.0
"""Bound on dropping a connection: openpi's server infers on its event loop and cannot answer
our close frame until the inference ends."""


class OpenPiPolicy:
    """Policy client for an openpi websocket server.

    ``spec``: required for a plain openpi server (its metadata does not describe the policy);
    with our server it is read from metadata, and if given it must agree with it.
    ``keys``: observation-dict mapping; default = what the server publishes, else the default
    :class:`ObservationKeys`. ``connect_retry_s``: how long to keep retrying a refused/failed
    connection (exponential backoff from ``backoff_initial_s`` to ``backoff_max_s``).
    ``proxy``: websockets would honour ``*_PROXY`` env vars by default (so does the official
    client); a control loop should not silently go through a proxy, so we connect directly
    unless one is given.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        api_key: str | None = None,
        spec: PolicySpec | None = None,
        keys: ObservationKeys | None = None,
        connect_timeout_s: float = 10.0,
        recv_timeout_s: float = 30.0,
        connect_retry_s: float = 10.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        max_message_bytes: int | None = None,
        proxy: str | None = None,
    ) -> None:
        uri = host if host.startswith(("ws://", "wss://")) else f"ws://{host}"
        self._uri = uri if port is None else f"{uri}:{port}"
        self._api_key = api_key
        self._expected_spec = spec
        self._requested_keys = keys
        self._connect_timeout_s = connect_timeout_s
        self._recv_timeout_s = recv_timeout_s
        self._connect_retry_s = connect_retry_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._max_message_bytes = max_message_bytes
        self._proxy = proxy
        self._lock = threading.Lock()
        self._ws: ClientConnection | None = None
        self._metadata: dict[str, Any] = {}
        self._spec: PolicySpec
        self._keys: ObservationKeys
        self.last_server_timing: dict[str, Any] = {}
        """``server_timing`` of the latest reply (``infer_ms``, ``prev_total_ms``, ...)."""
        with self._lock:
            self._open()

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def keys(self) -> ObservationKeys:
        return self._keys

    @property
    def metadata(self) -> dict[str, Any]:
        """The raw metadata dict the server sent on (re)connect."""
        return self._metadata

    @property
    def uri(self) -> str:
        return self._uri

    def infer(self, obs: PolicyObservation) -> np.ndarray:
        """Send ``obs``, return the checked (horizon, action_dim) float32 chunk."""
        with self._lock:
            obs.validate(self._spec)
            if self._ws is None:
                self._open()
            assert self._ws is not None
            payload = packb(self._keys.encode(obs))
            self._send(payload)
            try:
                reply = self._ws.recv(timeout=self._recv_timeout_s)
            except TimeoutError as exc:
                self._drop()
                raise TimeoutError(
                    f"no reply from {self._uri} within {self._recv_timeout_s} s "
                    "(connection dropped; the next call reconnects)"
                ) from exc
            except ConnectionClosed as exc:
                self._drop()
                raise ConnectionError(f"{self._uri} closed the connection: {exc}") from exc
            return self._parse_reply(reply)

    def _send(self, payload: bytes) -> None:
        """Send a request; if the connection was already closed (idle timeout, server restart)
        the request was never delivered, so reconnect once and resend."""
        assert self._ws is not None
        try:
            self._ws.send(payload)
            return
        except ConnectionClosed as exc:
            _LOG.info("connection to %s was closed (%s); reconnecting", self._uri, exc)
            self._drop()
        self._open()
        assert self._ws is not None
        try:
            self._ws.send(payload)
        except ConnectionClosed as exc:
            self._drop()
            raise ConnectionError(f"{self._uri} closed the connection: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> OpenPiPolicy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------------------

    def _parse_reply(self, reply: str | bytes) -> np.ndarray:
        if isinstance(reply, str):
            # openpi closes after errors; ours may not. Drop either way so pairing stays simple.
            self._drop()
            raise PolicyServerError(f"server {self._uri} failed the request: {reply}")
        try:
            msg = unpackb(reply)
        except MsgpackNumpyError as exc:
            self._drop()
            raise OpenPiProtocolError(f"undecodable reply from {self._uri}: {exc}") from exc
        if not isinstance(msg, dict) or "actions" not in msg:
            self._drop()
            got = sorted(map(str, msg)) if isinstance(msg, dict) else type(msg).__name__
            raise OpenPiProtocolError(f"reply from {self._uri} has no 'actions' (got {got})")
        timing = msg.get("server_timing")
        self.last_server_timing = timing if isinstance(timing, dict) else {}
        version = msg.get("policy_version")
        if (
            isinstance(version, int)
            and not isinstance(version, bool)
            and version != self._spec.version
        ):
            _LOG.info("policy %r now at version %d", self._spec.name, version)
            self._spec = dataclasses.replace(self._spec, version=version)
        try:
            return check_chunk(np.asarray(msg["actions"]), self._spec)
        except ValueError as exc:
            raise OpenPiProtocolError(f"bad actions from {self._uri}: {exc}") from exc

    def _open(self) -> None:
        """Connect (with retries), read metadata, derive spec and keys."""
        ws = self._connect_with_retry()
        try:
            metadata = self._read_metadata(ws)
            spec = spec_from_metadata(
                metadata, expected=self._expected_spec, default_name=f"openpi@{self._uri}"
            )
            keys = self._resolve_keys(metadata)
            previous = getattr(self, "_spec", None)
            if previous is not None and dataclasses.replace(spec, version=previous.version) != (
                previous
            ):
                raise OpenPiProtocolError(
                    f"server at {self._uri} now serves a different policy: {spec} != {previous}"
                )
        except BaseException:
            ws.close()
            raise
        self._ws, self._metadata, self._spec, self._keys = ws, metadata, spec, keys
        _LOG.info("connected to %s: policy %r v%d", self._uri, spec.name, spec.version)

    def _resolve_keys(self, metadata: dict[str, Any]) -> ObservationKeys:
        published = metadata.get("observation_keys")
        if published is None:
            return self._requested_keys or ObservationKeys()
        if not isinstance(published, dict):
            raise OpenPiProtocolError(f"metadata 'observation_keys' is not a dict: {published!r}")
        try:
            server_keys = ObservationKeys.from_metadata(published)
        except ValueError as exc:
            raise OpenPiProtocolError(f"bad 'observation_keys' in metadata: {exc}") from exc
        if self._requested_keys is not None and self._requested_keys != server_keys:
            raise OpenPiProtocolError(
                f"server reads {server_keys}, but the client was configured with "
                f"{self._requested_keys}"
            )
        return server_keys

    def _connect_with_retry(self) -> ClientConnection:
        headers = {API_KEY_HEADER: api_key_header(self._api_key)} if self._api_key else None
        deadline = time.monotonic() + self._connect_retry_s
        delay, max_delay = self._backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                return connect(
                    self._uri,
                    compression=None,
                    max_size=self._max_message_bytes,
                    additional_headers=headers,
                    open_timeout=self._connect_timeout_s,
                    close_timeout=_CLOSE_TIMEOUT_S,
                    proxy=self._proxy,
                    legacy=True,  # we manage the connection's lifetime ourselves
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = (
                    exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
                )
                if status in (401, 403):
                    raise PolicyAuthError(
                        f"{self._uri} refused the connection (HTTP {status}): {body}"
                    ) from exc
                if status < 500:
                    raise OpenPiProtocolError(
                        f"{self._uri} is not an openpi websocket server (HTTP {status}): {body}"
                    ) from exc
                error: Exception = exc
            except (OSError, TimeoutError, InvalidMessage) as exc:
                error = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectionError(
                    f"cannot connect to {self._uri} after {attempt} attempt(s) over "
                    f"{self._connect_retry_s:.1f} s: {error!r}"
                ) from error
            _LOG.info("waiting for %s (attempt %d: %r)", self._uri, attempt, error)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2.0, max_delay)

    def _read_metadata(self, ws: ClientConnection) -> dict[str, Any]:
        try:
            first = ws.recv(timeout=self._recv_timeout_s)
        except TimeoutError as exc:
            raise OpenPiProtocolError(
                f"{self._uri} sent no metadata within {self._recv_timeout_s} s"
            ) from exc
        except ConnectionClosed as exc:
            raise ConnectionError(f"{self._uri} closed before sending metadata: {exc}") from exc
        if isinstance(first, str):
            raise OpenPiProtocolError(f"{self._uri} sent text instead of metadata: {first[:200]}")
        try:
            metadata = unpackb(first)
        except MsgpackNumpyError as exc:
            raise OpenPiProtocolError(f"undecodable metadata from {self._uri}: {exc}") from exc
        if not isinstance(metadata, dict):
            raise OpenPiProtocolError(f"metadata from {self._uri} is not a dict: {metadata!r}")
        return metadata

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
