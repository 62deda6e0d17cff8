"""Serve any :class:`Policy` over openpi's websocket protocol.

Official openpi clients (``openpi_client.WebsocketClientPolicy``) and our
:class:`~pld_nodes.core.serving.openpi_client.OpenPiPolicy` can both talk to it. The asyncio
server runs on its own event loop in a background thread; decoding, ``policy.infer`` and
encoding run on a single worker thread, so the loop keeps answering pings, ``/healthz`` and
other clients during long inferences, and the policy never sees concurrent calls (requests of
several clients are served one at a time, in arrival order).

Error handling (one reply per request, so request/reply pairing never breaks):

* bad observation -> text frame ``"bad_observation: <why>"``, connection stays open;
* undecodable / text request -> text frame ``"protocol_error: <why>"``, close 1007 / 1003;
* ``policy.infer`` raised or returned a bad chunk -> text frame ``"policy_error: <why>"``,
  close 1011 (openpi's server does the same, with a traceback).

The official client raises ``RuntimeError`` with that text for any text frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from pld_nodes.core.policy.interface import Policy, check_chunk
from pld_nodes.core.serving.msgpack_numpy import MsgpackNumpyError, packb, unpackb
from pld_nodes.core.serving.observation_keys import ObservationError, ObservationKeys
from pld_nodes.core.serving.protocol import (
    API_KEY_HEADER,
    HEALTH_PATH,
    PLD_PROTOCOL_VERSION,
    PROTOCOL_NAME,
    RESERVED_METADATA_KEYS,
    api_key_header,
    spec_to_metadata,
)

_LOG = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest accepted request; openpi sets no limit, we bound memory per client."""

_CLOSE_TIMEOUT_S = 2.0
"""How long closing waits for a peer's close; bounds stop() when a client holds its socket."""


@dataclass(frozen=True)
class _Outcome:
    """Result of one request: a binary reply, or an error text and an optional close code."""

    reply: bytes | None = None
    error: str | None = None
    close_code: CloseCode | None = None


class PolicyServer:
    """openpi-compatible websocket server for ``policy``.

    ``port=0`` binds a free port; read :attr:`port` after :meth:`start`. ``api_key`` requires
    the header ``Authorization: Api-Key <key>`` (as the official client sends it) and answers
    HTTP 401 otherwise; ``/healthz`` stays open for liveness probes. ``metadata`` entries are
    sent to clients next to the PolicySpec fields and must not reuse their names.
    """

    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        keys: ObservationKeys | None = None,
        default_prompt: str | None = None,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        extra = dict(metadata or {})
        clash = sorted(RESERVED_METADATA_KEYS.intersection(extra))
        if clash:
            raise ValueError(f"metadata keys {clash} are reserved for the policy spec")
        if api_key is not None and not api_key:
            raise ValueError("api_key must be non-empty (or None for no authentication)")
        self._policy = policy
        self._host = host
        self._requested_port = port
        self._api_key = api_key
        self._extra_metadata = extra
        self._keys = keys or ObservationKeys()
        self._default_prompt = default_prompt
        self._max_message_bytes = max_message_bytes
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lifecycle = threading.RLock()

    @property
    def port(self) -> int:
        """The bound port (resolves ``port=0``); only valid while running."""
        if self._port is None:
            raise RuntimeError("server is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}"

    @property
    def keys(self) -> ObservationKeys:
        return self._keys

    def metadata(self) -> dict[str, Any]:
        """What a client receives on connect (read per connection: the spec's version may bump)."""
        return {
            **self._extra_metadata,
            **spec_to_metadata(self._policy.spec),
            "protocol": PROTOCOL_NAME,
            "pld_protocol_version": PLD_PROTOCOL_VERSION,
            "observation_keys": self._keys.to_metadata(),
        }

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> PolicyServer:
        """Bind and serve in a background thread; returns once listening (or raises)."""
        with self._lifecycle:
            return self._start(timeout_s)

    def _start(self, timeout_s: float) -> PolicyServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._startup_error = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-infer")
        self._thread = threading.Thread(target=self._run, name="openpi-policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"policy server did not start within {timeout_s} s")
        if self._startup_error is not None:
            error = self._startup_error
            self.stop()
            raise error
        _LOG.info("serving policy %r on %s", self._policy.spec.name, self.url)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close all connections (code 1001) and the listening socket; idempotent."""
        with self._lifecycle:
            self._stop(timeout_s)

    def _stop(self, timeout_s: float) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout_s)
        if thread.is_alive():
            _LOG.warning("policy server thread did not stop within %.1f s", timeout_s)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._thread = self._loop = self._stop_requested = self._executor = None
        self._port = None

    def serve_forever(self) -> None:
        """Blocking variant for scripts: serve until Ctrl-C."""
        self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():  # stop() may come from elsewhere
                thread.join(0.5)
        except KeyboardInterrupt:
            _LOG.info("interrupted, stopping policy server")
        finally:
            self.stop()

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # report bind errors etc. to start()
            self._startup_error = exc
            if self._ready.is_set():
                _LOG.exception("policy server loop crashed")
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop_requested = asyncio.Event()
        async with serve(
            self._handle,
            self._host,
            self._requested_port,
            compression=None,
            max_size=self._max_message_bytes,
            process_request=self._process_request,
            close_timeout=_CLOSE_TIMEOUT_S,
        ) as server:
            self._port = _bound_port(server)
            self._ready.set()
            await self._stop_requested.wait()

    # ---- HTTP layer: health and authentication ---------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path == HEALTH_PATH:
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self._api_key is None:
            return None
        sent = request.headers.get(API_KEY_HEADER)
        if sent is not None and hmac.compare_digest(
            sent.encode(), api_key_header(self._api_key).encode()
        ):
            return None
        _LOG.warning(
            "rejected connection from %s: %s API key",
            connection.remote_address,
            "missing" if sent is None else "wrong",
        )
        return connection.respond(
            http.HTTPStatus.UNAUTHORIZED,
            f"invalid or missing API key: send header '{API_KEY_HEADER}: Api-Key <key>'\n",
        )

    # ---- websocket layer -------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        peer = ws.remote_address
        _LOG.info("client %s connected", peer)
        loop = asyncio.get_running_loop()
        prev_total_ms: float | None = None
        try:
            await ws.send(packb(self.metadata()))
            async for message in ws:
                start = time.monotonic()
                if isinstance(message, str):
                    outcome = _Outcome(
                        error="protocol_error: expected a binary msgpack frame, got text",
                        close_code=CloseCode.UNSUPPORTED_DATA,
                    )
                else:
                    assert self._executor is not None
                    outcome = await loop.run_in_executor(
                        self._executor, self._process, message, prev_total_ms
                    )
                if outcome.reply is not None:
                    await ws.send(outcome.reply)
                else:
                    assert outcome.error is not None
                    _LOG.warning("request from %s failed: %s", peer, outcome.error)
                    await ws.send(outcome.error)
                    if outcome.close_code is not None:
                        await ws.close(outcome.close_code, _close_reason(outcome.error))
                        return
                prev_total_ms = (time.monotonic() - start) * 1e3
        except ConnectionClosed:
            pass
        finally:
            _LOG.info("client %s disconnected", peer)

    def _process(self, message: bytes, prev_total_ms: float | None) -> _Outcome:
        """Decode, infer, encode: runs on the worker thread."""
        start = time.monotonic()
        try:
            raw = unpackb(message)
        except MsgpackNumpyError as exc:
            return _Outcome(error=f"protocol_error: {exc}", close_code=CloseCode.INVALID_DATA)
        spec = self._policy.spec
        try:
            obs = self._keys.decode(raw, spec, default_prompt=self._default_prompt)
        except ObservationError as exc:
            return _Outcome(error=f"bad_observation: {exc}")
        infer_start = time.monotonic()
        try:
            chunk = check_chunk(self._policy.infer(obs), spec)
        except Exception as exc:
            _LOG.exception("policy %r failed", spec.name)
            return _Outcome(
                error=f"policy_error: {spec.name!r} raised {type(exc).__name__}: {exc}",
                close_code=CloseCode.INTERNAL_ERROR,
            )
        infer_ms = (time.monotonic() - infer_start) * 1e3
        timing: dict[str, float] = {
            "infer_ms": infer_ms,
            "decode_ms": (infer_start - start) * 1e3,
        }
        if prev_total_ms is not None:
            timing["prev_total_ms"] = prev_total_ms
        reply = {
            "actions": chunk,
            "server_timing": timing,
            "policy_version": self._policy.spec.version,
        }
        return _Outcome(reply=packb(reply))


def _bound_port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("server has no listening socket")


def _close_reason(text: str) -> str:
    """Websocket close reasons are limited to 123 UTF-8 bytes."""
    return text.encode()[:120].decode(errors="ignore")
