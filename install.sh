#!/usr/bin/env bash
# Deploys the capture agent to every Pi in the rig configuration over SSH (after ./setup.sh), all
# cameras in parallel: the agent as a wheel into a venv with system site packages, agent.json, the
# shared secret (0600), systemd units (+ PTP or chrony per time_sync), a sudoers drop-in checked
# with visudo -c first; restarts the services and checks every agent answers. Options go to
# `syncrig deploy` (--dry-run, --camera NAME, --identity KEY, --accept-new-host-keys, ...).
# stdin stays connected so an unknown host key can be confirmed at the prompt; no remote command
# ever reads it (each one's stdin is closed), so every camera in the list is deployed.
set -euo pipefail
# shellcheck source=tools/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools/bootstrap.sh"
ensure_venv "test"
exec "$VENV/bin/syncrig" deploy "$@"
