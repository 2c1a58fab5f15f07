#!/usr/bin/env bash
# Deploys the capture agent to every Pi in the rig configuration over SSH (after ./setup.sh):
# copies pi-deploy/ and the shared secret (0600), writes each camera's agent.json, creates a venv
# on the Pi, installs and (re)starts the syncrig-agent systemd unit. Options go to `syncrig deploy`
# (--dry-run, --camera NAME, --identity KEY, --accept-new-host-keys, ...).
set -euo pipefail
# shellcheck source=tools/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools/bootstrap.sh"
ensure_venv "test"
exec "$VENV/bin/syncrig" deploy "$@" </dev/null
