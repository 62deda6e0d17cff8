#!/usr/bin/env bash
# Build .venv-peers/lerobot: lerobot 0.4.4 (the last release for Python 3.11) to check that our
# LeRobotDataset v3 exports load with the official loader. Its own venv because lerobot pins
# torch < 2.11; we give it the stack's CPU torch 2.13.0 and install everything else --no-deps
# from the exact pins in requirements/lerobot-check.txt. Idempotent (~40 s the first time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLD_LEROBOT_VENV:-$ROOT/.venv-peers/lerobot}"
STAMP="$VENV/.pld-lerobot-installed"
REQ="$ROOT/requirements/lerobot-check.txt"
if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$REQ"; then
  exit 0
fi
rm -rf "$VENV"
python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps torchvision==0.28.0 -r "$REQ"
# torchvision 0.28 on PyPI is a CUDA build; next to the CPU torch its compiled operators do not
# load and importing it fails in torchvision._meta_registrations. The dataset loader only needs
# its Python transforms, so these two registration modules are stubbed before torchvision loads.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import sys, types; sys.modules.setdefault('torchvision._meta_registrations', types.ModuleType('torchvision._meta_registrations')); sys.modules.setdefault('torchvision._autograd_registrations', types.ModuleType('torchvision._autograd_registrations'))" \
  > "$SITE/torchvision_cpu_shim.pth"
"$VENV/bin/python" -c "import lerobot.datasets.lerobot_dataset" 2>/dev/null
cp "$REQ" "$STAMP"
echo "lerobot check venv ready: $VENV"
