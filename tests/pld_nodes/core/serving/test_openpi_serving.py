"""PolicyServer <-> OpenPiPolicy over real sockets, and both against Physical Intelligence's
official openpi client/server (run in the peer venv)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from pld_nodes.core.policy.interface import Policy, PolicyObservation, PolicySpec
from pld_nodes.core.serving import (
    ObservationKeys,
    OpenPiPolicy,
    OpenPiProtocolError,
    PolicyAuthError,
    PolicyServer,
    PolicyServerError,
)
from pld_nodes.core.serving.msgpack_numpy import packb, unpackb

Serve = Callable[..., PolicyServer]
ObsFactory = Callable[..., PolicyObservation]


def client_for(server: PolicyServer, **kwargs: Any) -> OpenPiPolicy:
    kwargs.setdefault("connect_retry_s", 0.0)
    kwargs.setdefault("recv_timeout_s", 10.0)
    return OpenPiPolicy("127.0.0.1", server.port, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_request(server: PolicyServer, message: bytes | str) -> tuple[Any, ConnectionClosed | None]:
    """Send one frame on a fresh raw websocket; return (reply, close exception if it closed)."""
    with connect(server.url, compression=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=5))  # metadata
        ws.send(message)
        reply = ws.recv(timeout=5)
        try:
            ws.recv(timeout=0.5)
        except ConnectionClosed as exc:
            return reply, exc
        except TimeoutError:
            pass
        return reply, None


# ---- our client <-> our server ------------------------------------------------------------


def test_round_trip_matches_in_process_policy(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    server = serve(policy, metadata={"robot": "panda"})
    with client_for(server) as client:
        assert isinstance(client, Policy)
        assert client.spec == policy.spec
        assert client.metadata["robot"] == "panda"
        assert client.metadata["protocol"] == "openpi-websocket"
        for seed in range(3):
            obs = obs_factory(seed)
            chunk = client.infer(obs)
            assert chunk.dtype == np.float32 and chunk.shape == (5, 7)
            np.testing.assert_array_equal(chunk, policy.infer(obs))
        assert client.last_server_timing["infer_ms"] >= 0.0
        assert "prev_total_ms" in client.last_server_timing


def test_observation_keys_are_published_and_followed(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    keys = ObservationKeys.libero(primary="agentview", wrist="wrist")
    server = serve(policy, keys=keys)
    with client_for(server) as client:
        assert client.keys == keys
        obs = obs_factory(1)
        np.testing.assert_array_equal(client.infer(obs), policy.infer(obs))
    with pytest.raises(OpenPiProtocolError, match="configured with"):
        client_for(server, keys=ObservationKeys())


def test_expected_spec_is_checked_against_metadata(serve: Serve, policy: Policy) -> None:
    server = serve(policy)
    with client_for(server, spec=policy.spec) as client:
        assert client.spec == policy.spec
    wrong = PolicySpec(name="x", chunk_horizon=8, image_keys=("agentview", "wrist"))
    with pytest.raises(OpenPiProtocolError, match="chunk_horizon: server 5 != expected 8"):
        client_for(server, spec=wrong)


def test_version_bump_reaches_client(serve: Serve, policy: Any, obs_factory: ObsFactory) -> None:
    server = serve(policy)
    with client_for(server) as client:
        client.infer(obs_factory())
        policy.bump_version()
        client.infer(obs_factory())
        assert client.spec.version == 1


def test_reserved_metadata_keys_are_refused(policy: Policy) -> None:
    with pytest.raises(ValueError, match="reserved"):
        PolicyServer(policy, metadata={"action_dim": 3})


def test_client_validates_before_sending(
    serve: Serve, policy: Any, obs_factory: ObsFactory
) -> None:
    server = serve(policy)
    with client_for(server) as client:
        obs = obs_factory()
        bad = PolicyObservation(proprio=obs.proprio[:3], instruction="x", images=obs.images)
        with pytest.raises(ValueError, match="proprio shape"):
            client.infer(bad)
    assert policy.calls == 0


# ---- authentication and health ------------------------------------------------------------


def test_api_key_accepted_and_rejected(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    server = serve(policy, api_key="s3cret")
    with client_for(server, api_key="s3cret") as client:
        client.infer(obs_factory())
    for key in ("wrong", None):
        with pytest.raises(PolicyAuthError, match=r"HTTP 401.*Api-Key"):
            client_for(server, api_key=key, connect_retry_s=2.0)


def test_healthz(serve: Serve, policy: Policy) -> None:
    server = serve(policy, api_key="s3cret")  # health stays open for liveness probes
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as resp:
        assert resp.status == 200 and resp.read() == b"OK\n"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
    assert info.value.code == 401
    info.value.close()


# ---- failures never take the server down ---------------------------------------------------


def test_bad_observation_gets_error_and_server_keeps_serving(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    server = serve(policy)
    obs = obs_factory()
    good = ObservationKeys().encode(obs)
    missing = {k: v for k, v in good.items() if k != "observation/images/wrist"}
    wrong_dtype = {**good, "observation/images/agentview": np.zeros((8, 8, 3), np.float32)}
    with connect(server.url, compression=None) as ws:
        ws.recv(timeout=5)
        for bad, why in ((missing, "lacks 'observation/images/wrist'"), (wrong_dtype, "float32")):
            ws.send(packb(bad))
            reply = ws.recv(timeout=5)
            assert isinstance(reply, str) and reply.startswith("bad_observation:") and why in reply
        ws.send(packb(good))  # same connection still works
        np.testing.assert_array_equal(unpackb(ws.recv(timeout=5))["actions"], policy.infer(obs))
    with client_for(server) as second:
        np.testing.assert_array_equal(second.infer(obs), policy.infer(obs))


@pytest.mark.parametrize(
    ("message", "code", "prefix"),
    [(b"\xc1garbage", 1007, "protocol_error"), ("text frame", 1003, "protocol_error")],
    ids=["undecodable", "text"],
)
def test_protocol_errors_close_only_that_connection(
    serve: Serve,
    policy: Policy,
    obs_factory: ObsFactory,
    message: bytes | str,
    code: int,
    prefix: str,
) -> None:
    server = serve(policy)
    reply, closed = raw_request(server, message)
    assert isinstance(reply, str) and reply.startswith(prefix)
    assert closed is not None and closed.rcvd is not None and closed.rcvd.code == code
    with client_for(server) as client:
        client.infer(obs_factory())


@pytest.mark.parametrize("instruction", ["explode", "nan"])
def test_policy_failure_is_reported_and_client_reconnects(
    serve: Serve, policy: Policy, obs_factory: ObsFactory, instruction: str
) -> None:
    server = serve(policy)
    with client_for(server) as client:
        with pytest.raises(PolicyServerError, match="policy_error: 'test-chunk'"):
            client.infer(obs_factory(instruction=instruction))
        obs = obs_factory()
        np.testing.assert_array_equal(client.infer(obs), policy.infer(obs))


def test_recv_timeout_drops_connection_and_next_call_reconnects(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    server = serve(policy)
    with (
        client_for(server, recv_timeout_s=0.2) as client,
        pytest.raises(TimeoutError, match="no reply"),
    ):
        client.infer(obs_factory(instruction="slow"))
    with client_for(server, recv_timeout_s=5.0) as client:
        obs = obs_factory(3)
        np.testing.assert_array_equal(client.infer(obs), policy.infer(obs))  # after the slow one


def test_health_and_pings_answered_during_inference(
    serve: Serve, policy: Policy, obs_factory: ObsFactory
) -> None:
    server = serve(policy)
    slow = threading.Thread(
        target=lambda: client_for(server).infer(obs_factory(instruction="slow")), daemon=True
    )
    slow.start()
    time.sleep(0.2)
    start = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as resp:
        assert resp.status == 200
    assert time.monotonic() - start < 0.5  # the event loop is not blocked by inference
    slow.join(5)


# ---- connecting ----------------------------------------------------------------------------


def test_client_retries_until_server_is_up(policy: Policy, obs_factory: ObsFactory) -> None:
    port = free_port()
    server = PolicyServer(policy, "127.0.0.1", port)
    timer = threading.Timer(0.5, server.start)
    timer.start()
    try:
        with OpenPiPolicy("127.0.0.1", port, connect_retry_s=10.0, backoff_initial_s=0.05) as c:
            c.infer(obs_factory())
    finally:
        timer.join()
        server.stop()


def test_client_survives_server_restart(policy: Policy, obs_factory: ObsFactory) -> None:
    obs = obs_factory()
    with PolicyServer(policy) as server:
        port = server.port
        client = client_for(server, connect_retry_s=5.0)
        client.infer(obs)
    with PolicyServer(policy, port=port), client:
        np.testing.assert_array_equal(client.infer(obs), policy.infer(obs))


def test_client_gives_up_after_retry_window() -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"after \d+ attempt"):
        OpenPiPolicy("127.0.0.1", free_port(), connect_retry_s=0.3, backoff_initial_s=0.05)
    assert time.monotonic() - start < 2.0


def test_server_stop_is_clean_and_port_reusable(policy: Policy) -> None:
    server = PolicyServer(policy).start()
    port = server.port
    server.stop()
    server.stop()
    with PolicyServer(policy, port=port) as again:
        assert again.port == port
        with pytest.raises(OSError):
            PolicyServer(policy, port=port).start()  # bind errors reach the caller


def test_serve_forever_blocks_until_stopped(policy: Policy, obs_factory: ObsFactory) -> None:
    server = PolicyServer(policy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5.0
    while not server.running and time.monotonic() < deadline:
        time.sleep(0.01)
    with client_for(server) as client:
        client.infer(obs_factory())
    server.stop()
    thread.join(5.0)
    assert not thread.is_alive() and not server.running


# ---- interoperability with the official openpi packages -------------------------------------


def peer_plan(obs: PolicyObservation, tmp_path: Path, port: int, **extra: Any) -> Path:
    """A plan for peer_openpi.py: the observation of ``obs`` as the official client sends it."""
    keys = ObservationKeys()
    request: dict[str, Any] = {
        "arrays": {keys.state: {"values": obs.proprio.tolist(), "dtype": "float64"}},
        "images": {},
        "strings": {keys.prompt: obs.instruction},
    }
    for cam, image in obs.images.items():
        fill = int(image.flat[0])
        request["images"][keys.image_key(cam)] = {"shape": list(image.shape), "fill": fill}
    bad = {**request, "images": dict(list(request["images"].items())[:1])}
    plan = {"host": "127.0.0.1", "port": port, "requests": [request, bad, request], **extra}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def uniform_obs(spec: PolicySpec) -> PolicyObservation:
    return PolicyObservation(
        proprio=np.linspace(-0.9, 0.9, spec.proprio_dim),
        instruction="pick up the cube",
        images={
            cam: np.full((*spec.image_size, 3), 40 + 100 * i, dtype=np.uint8)
            for i, cam in enumerate(spec.image_keys)
        },
    )


def test_official_openpi_client_talks_to_our_server(
    serve: Serve, policy: Policy, run_peer: Callable[..., Any], tmp_path: Path
) -> None:
    server = serve(policy, api_key="s3cret", metadata={"robot": "panda"})
    obs = uniform_obs(policy.spec)
    expected = policy.infer(obs)
    out = json.loads(
        run_peer("client", str(peer_plan(obs, tmp_path, server.port, api_key="s3cret"))).stdout
    )
    assert out["numpy"].startswith("1.")  # the peer really runs openpi's numpy<2 stack
    md = out["metadata"]
    assert md["name"] == "test-chunk" and md["robot"] == "panda"
    assert (md["action_dim"], md["chunk_horizon"], md["proprio_dim"]) == (7, 5, 16)
    assert md["image_keys"] == ["agentview", "wrist"] and md["image_size"] == [8, 8]
    assert md["observation_keys"]["state"] == "observation/state"
    first, bad, last = out["results"]
    for result in (first, last):
        assert (result["dtype"], result["shape"], result["policy_version"]) == ("<f4", [5, 7], 0)
        np.testing.assert_array_equal(np.asarray(result["actions"], dtype=np.float32), expected)
        assert result["server_timing"]["infer_ms"] >= 0.0
    assert bad["error"].startswith("RuntimeError: Error in inference server:")
    assert "bad_observation" in bad["error"] and "observation/images/wrist" in bad["error"]
    assert "prev_total_ms" in last["server_timing"]

    refused = json.loads(
        run_peer("client", str(peer_plan(obs, tmp_path, server.port, api_key="nope"))).stdout
    )
    assert "InvalidStatus" in refused["connect_error"] and "401" in refused["connect_error"]


def test_our_client_talks_to_official_openpi_server(openpi_reference_server: int) -> None:
    """openpi's metadata has no spec: the caller supplies it, and its arrays decode fine."""
    port = openpi_reference_server
    with pytest.raises(OpenPiProtocolError, match=r"pass spec=PolicySpec"):
        OpenPiPolicy("127.0.0.1", port, connect_retry_s=30.0)
    spec = PolicySpec(name="peer", chunk_horizon=5, proprio_dim=16)
    with OpenPiPolicy("127.0.0.1", port, spec=spec, connect_retry_s=5.0) as client:
        assert client.metadata["peer"] == "openpi_server"
        reset_pose = client.metadata["reset_pose"]
        assert reset_pose.dtype == np.float32 and reset_pose.shape == (3,)
        obs = uniform_obs(spec)
        expected = np.tanh(obs.proprio[None, :7] + 0.1 * np.arange(5.0)[:, None])
        chunk = client.infer(obs)
        np.testing.assert_array_equal(chunk, expected.astype(np.float32))
        assert "infer_ms" in client.last_server_timing
        assert client.spec.version == 0  # openpi sends no policy_version
    # openpi answers a failing infer with a traceback text frame, then closes with 1011.
    broken = ObservationKeys(state="observation/joint_position")
    with (
        OpenPiPolicy("127.0.0.1", port, spec=spec, keys=broken, connect_retry_s=5.0) as client,
        pytest.raises(PolicyServerError, match="KeyError"),
    ):
        client.infer(obs)
    with OpenPiPolicy("127.0.0.1", port, spec=spec, connect_retry_s=5.0) as client:
        np.testing.assert_array_equal(client.infer(obs), expected.astype(np.float32))
