#!/usr/bin/env bash
# Build .venv-peers/franka-sim: franka-sim 1.1.7 (the libfranka wire-protocol server on MuJoCo)
# and its offline FR3 model (fr3.xml next to the venv's python). Its own venv: it pins numpy
# 1.26 and mujoco < 3.3. Idempotent (~10 s the first time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLD_FRANKA_SIM_VENV:-$ROOT/.venv-peers/franka-sim}"
STAMP="$VENV/.pld-franka-sim-installed"
REQ="$ROOT/requirements/franka-sim.txt"
if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$REQ" && [[ -f "$VENV/fr3.xml" ]]; then
  exit 0
fi
rm -rf "$VENV"
python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$REQ"
"$VENV/bin/python" "$ROOT/scripts/build_fr3_mjcf.py" "$VENV/fr3.xml"
cp "$REQ" "$STAMP"
echo "franka-sim venv ready: $VENV"
