#!/usr/bin/env bash
# Writes the rig configuration (~/.config/syncrig/rig.json, or SYNCRIG_HOME) and a new shared
# secret (mode 0600) that authenticates every control link. Example:
#   ./setup.sh --camera cam0=pi@10.0.0.10 --camera cam1=pi@10.0.0.11 --camera cam2=pi@10.0.0.12 --fps 56
# Every value is validated in Python (camera names, hosts, users: no shell metacharacters).
set -euo pipefail
# shellcheck source=tools/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools/bootstrap.sh"
ensure_venv "test"
exec "$VENV/bin/syncrig" setup "$@"
