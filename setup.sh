#!/usr/bin/env bash
# Writes the rig configuration (~/.config/syncrig/rig.json, or SYNCRIG_HOME) and the shared secret
# (created with mode 0600) that authenticates every control link. On a terminal without flags it
# asks; unattended:
#   ./setup.sh --camera cam0=pi@10.0.0.10 --camera cam1=pi@10.0.0.11 --camera cam2=pi@10.0.0.12 --fps 56
# Every value is validated in Python (camera names, hosts, users, paths: no shell metacharacters).
# An existing config/secret is kept unless --force (--force --rotate-secret: new secret, redeploy).
set -euo pipefail
# shellcheck source=tools/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools/bootstrap.sh"
ensure_venv "test"
exec "$VENV/bin/syncrig" setup "$@"
