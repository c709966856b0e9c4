#!/usr/bin/env bash
# Set up everything the tests need on Debian bookworm (apt packages, a venv) and run them:
# lint, type check, the test suite against real servers on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-common.sh

APT_TEST_PACKAGES=(mosquitto mosquitto-clients influxdb influxdb-client victoria-metrics openssl chromium nginx sqlite3 babeld iproute2 busybox)
ensure_apt "${APT_TEST_PACKAGES[@]}"
ensure_venv '.[test]'

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
