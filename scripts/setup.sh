#!/usr/bin/env bash
# One-shot, unattended setup of a development/CI machine (Debian 12 / Ubuntu, CPython 3.11):
#   Debian packages -> .venv with the hash-locked requirements -> pld_interfaces built into the
#   venv with colcon -> the stack's Python packages installed editable.
# Idempotent: re-running only does what is missing. Workstations with a system ROS 2 Jazzy use
# `colcon build` instead (README, "Workstation").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLD_VENV:-$ROOT/.venv}"
PYTHON="${PLD_PYTHON:-python3.11}"
APT_PACKAGES=(
  cmake ninja-build g++ git         # colcon build of pld_interfaces
  libegl1 libgl1 libgles2 libegl-mesa0 libgl1-mesa-dri libosmesa6  # headless MuJoCo rendering
  libglib2.0-0                       # opencv-python
  libusb-1.0-0                       # pyrealsense2 (camera_node)
  libfontconfig1 libxkbcommon0 libdbus-1-3  # PyQt5 (operator panel; offscreen in CI)
)

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

install_debian_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && { log "Debian packages present"; return; }
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

create_venv() {
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "CPython 3.11 is required (the lock and the ROS 2 Jazzy wheels are cp311); set PLD_PYTHON"
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  local stamp="$VENV/.lock.sha256" want
  want="$(sha256sum "$ROOT/requirements/lock.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing requirements/lock.txt (hash-checked)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip==25.3
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
      -r "$ROOT/requirements/lock.txt"
    echo "$want" > "$stamp"
  else
    log "venv up to date with requirements/lock.txt"
  fi
}

# The ROS wheels' exported CMake files hard-code the wheel builder's Python paths; point them at
# this venv's interpreter and numpy before CMake reads them.
fix_wheel_cmake_paths() {
  local py_inc np_inc
  py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
  local files
  files="$(grep -rlF "/opt/python/cp311-cp311/" "$VENV/share" --include='*.cmake' || true)"
  for f in $files; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" "$f"
  done
}

# pld_interfaces is built with colcon and installed straight into the venv (merge-install layout
# == venv layout), so `import pld_interfaces` works in every venv Python without sourcing.
build_interfaces() {
  local stamp="$VENV/.pld_interfaces.sha256" want
  want="$(cat "$ROOT"/src/pld_interfaces/{package.xml,CMakeLists.txt} "$ROOT"/src/pld_interfaces/*/* | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then log "pld_interfaces up to date"; return; fi
  fix_wheel_cmake_paths
  log "building pld_interfaces into the venv"
  local build_dir; build_dir="$(mktemp -d)"
  (
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    cd "$build_dir"
    AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" colcon --log-base "$build_dir/log" build \
      --base-paths "$ROOT/src/pld_interfaces" --merge-install --install-base "$VENV" \
      --build-base "$build_dir/build" --event-handlers console_cohesion- summary+ \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" -G Ninja
  ) || die "colcon build of pld_interfaces failed (log above)"
  rm -rf "$build_dir"
  "$VENV/bin/python" -c 'import pld_interfaces.msg' || die "pld_interfaces built but does not import"
  echo "$want" > "$stamp"
}

install_stack_packages() {
  log "installing the stack's packages (editable)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    -e "$ROOT/src/pld_nodes" -e "$ROOT/sim_bridge" -e "$ROOT/launch" -e "$ROOT/calibration" \
    -e "$ROOT/src/pld_operator_panel"
}

install_debian_packages
create_venv
build_interfaces
install_stack_packages
log "done: activate with 'source ${VENV#"$ROOT"/}/bin/activate' (from the repository root)"
