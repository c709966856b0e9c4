#!/usr/bin/env bash
# Set up meshmon in a venv on Debian bookworm and start the demo: embedded MQTT broker,
# collector and a simulated Freifunk network. Extra arguments go to `meshmon demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-common.sh
ensure_venv '.'
exec .venv/bin/meshmon demo "$@"
