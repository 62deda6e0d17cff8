#!/usr/bin/env bash
# README's main-job command: set up (idempotent), then run the main job on the simulator.
#   bash scripts/run.sh                    # default: Lift, 3 episodes, cameras on
#   bash scripts/run.sh --episodes 10      # extra arguments go to pld-run (see --help)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec pld-run "$@"
