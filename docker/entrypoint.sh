#!/usr/bin/env bash
# Container entrypoint: sources ROS 2 Jazzy and the stack's colcon workspace, sets the
# middleware defaults (each one overridable from the environment), then runs the command.
#   docker compose run --rm robot                      # the service's command
#   docker compose run --rm robot ros2 topic list      # anything else, in the same environment
set -eo pipefail

ROS_SETUP="/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
WS_SETUP="${PLD_WS_SETUP:-/opt/pld/ros2_ws/install/setup.bash}"

# The setup scripts read unset variables, so no `set -u` around them.
# shellcheck source=/dev/null
source "$ROS_SETUP"
# shellcheck source=/dev/null
source "$WS_SETUP"

export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-0}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
if [ -z "${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ]; then
  FASTRTPS_DEFAULT_PROFILES_FILE="$(ros2 pkg prefix pld_bringup)/share/pld_bringup/config/fastdds.xml"
  export FASTRTPS_DEFAULT_PROFILES_FILE
fi

if [ "$#" -eq 0 ]; then
  set -- bash
fi
exec "$@"
