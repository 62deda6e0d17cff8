#!/usr/bin/env bash
# README's main-job command: set up (idempotent), then run the main job on the simulator.
#   bash scripts/run.sh                    # the whole PLD loop on sim Lift (~35 min on 2 cores)
#   bash scripts/run.sh --quick            # every stage with tiny budgets; extra args go to pld-run
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec pld-run "$@"
