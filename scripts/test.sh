#!/usr/bin/env bash
# README's test command: set up (idempotent), lint, then run the test suite.
#   bash scripts/test.sh            # CI suite (slow sim experiments run in their short form)
#   PLD_RUN_SLOW=1 bash scripts/test.sh   # also the long experiments
#   bash scripts/test.sh -k launcher      # extra arguments go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate

echo "== ruff (lint + format check)"
ruff check .
ruff format --check .

echo "== pytest"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYTHONDONTWRITEBYTECODE=1
marker=()
[ "${PLD_RUN_SLOW:-0}" = "1" ] || marker=(-m "not slow")
set +e
python -m pytest "${marker[@]}" -p no:cacheprovider "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$code"
