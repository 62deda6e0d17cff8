"""Runs inside the openpi peer venv (numpy<2, openpi_client, openpi_server); never imported.

Modes (argument 1):
  client PLAN.json  - WebsocketClientPolicy against a server; prints one JSON result object.
  server PORT       - openpi's WebsocketPolicyServer with a deterministic policy (see below).
  echo IN OUT       - openpi_client.msgpack_numpy: unpack IN, write a type summary to stdout,
                      repack to OUT (for byte-level wire compatibility checks).
"""

import json
import sys

import numpy as np
from openpi_client import msgpack_numpy

HORIZON, ACTION_DIM = 5, 7


def build_obs(request):
    obs = {}
    for key, spec in request.get("arrays", {}).items():
        obs[key] = np.asarray(spec["values"], dtype=spec["dtype"])
    for key, spec in request.get("images", {}).items():
        obs[key] = np.full(spec["shape"], spec["fill"], dtype=np.uint8)
    obs.update(request.get("strings", {}))
    return obs


def run_client(plan_path):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    with open(plan_path) as f:
        plan = json.load(f)
    out = {"numpy": np.__version__}
    try:
        client = WebsocketClientPolicy(plan["host"], plan["port"], api_key=plan.get("api_key"))
    except Exception as exc:
        out["connect_error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
        return
    out["metadata"] = client.get_server_metadata()
    results = []
    for request in plan["requests"]:
        try:
            reply = client.infer(build_obs(request))
        except Exception as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}"})
            continue
        actions = reply["actions"]
        results.append(
            {
                "actions": actions.tolist(),
                "dtype": actions.dtype.str,
                "shape": list(actions.shape),
                "server_timing": reply.get("server_timing"),
                "policy_version": reply.get("policy_version"),
            }
        )
    out["results"] = results
    print(json.dumps(out))


class PeerPolicy:
    """actions[k, j] = tanh(state[j] + 0.1 k), float64 like many openpi output transforms."""

    def infer(self, obs):
        state = np.asarray(obs["observation/state"], dtype=np.float64)
        k = np.arange(HORIZON, dtype=np.float64)[:, None]
        return {"actions": np.tanh(state[None, :ACTION_DIM] + 0.1 * k)}

    def reset(self):
        pass


def run_server(port):
    import logging

    from openpi_server import WebsocketPolicyServer

    logging.basicConfig(level=logging.WARNING)
    metadata = {"peer": "openpi_server", "reset_pose": np.zeros(3, dtype=np.float32)}
    WebsocketPolicyServer(
        PeerPolicy(), host="127.0.0.1", port=port, metadata=metadata
    ).serve_forever()


def describe(value):
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [describe(v) for v in value]
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype.str} {list(value.shape)}"
    return type(value).__name__


def run_echo(src, dst):
    with open(src, "rb") as f:
        value = msgpack_numpy.unpackb(f.read())
    with open(dst, "wb") as f:
        f.write(msgpack_numpy.packb(value))
    print(json.dumps(describe(value)))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "client":
        run_client(sys.argv[2])
    elif mode == "server":
        run_server(int(sys.argv[2]))
    elif mode == "echo":
        run_echo(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
