# Sourced by tools/syncrig and tools/run-tests: creates or refreshes the project's virtualenv so
# that a fresh clone needs nothing installed by hand (python3 with venv is the only requirement),
# and (run-tests) installs the Debian packages the tests use when it runs as root.
# shellcheck shell=bash

syncrig_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SYNCRIG_VENV:-$syncrig_root/.venv}"

missing_debian_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

# Installs whichever of the named Debian packages are missing, as root with apt-get. Never fails:
# a package that could not be installed is named, and the tests that need it skip loudly.
# No service may start while apt runs: chrony's postinst would start chronyd (through invoke-rc.d
# or deb-systemd-invoke, both of which obey policy-rc.d), and a running chronyd steers this
# machine's clock. A chronyd, ptp4l or phc2sys that appears anyway is stopped and named.
install_debian_packages() {
    local missing
    mapfile -t missing < <(missing_debian_packages "$@")
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "syncrig: not installed (needs root and apt-get): ${missing[*]}; tests that need them skip (NOT RUN)" >&2
        return 0
    fi
    echo "syncrig: installing ${missing[*]} with apt-get (service starts denied meanwhile)" >&2
    local servos_before
    servos_before="$(_clock_servo_pids)"
    # The DPkg lock timeout waits for another apt (an unattended upgrade, a parallel run) instead
    # of failing at once.
    if ! (
        _deny_service_starts || exit 1
        apt-get -o DPkg::Lock::Timeout=600 update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
    ) >&2; then
        echo "syncrig: apt-get failed; see above" >&2
    fi
    local pid
    for pid in $(_clock_servo_pids); do
        if ! grep -qx "$pid" <<<"$servos_before"; then
            echo "syncrig: the install started $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid) despite policy-rc.d; stopping it so it cannot steer the clock" >&2
            kill "$pid" 2>/dev/null || true
        fi
    done
    mapfile -t missing < <(missing_debian_packages "$@")
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "syncrig: still not installed: ${missing[*]}; tests that need them skip (NOT RUN)" >&2
    fi
}

_clock_servo_pids() {
    local name
    for name in chronyd ptp4l phc2sys; do
        pgrep -x "$name" || true
    done
}

# Runs in install_debian_packages' subshell: puts a policy-rc.d that answers 101 ("action
# forbidden") in place and restores whatever was there when the subshell exits.
_deny_service_starts() {
    local policy=/usr/sbin/policy-rc.d saved=""
    if [ -e "$policy" ]; then
        saved="$(mktemp "$policy.syncrig-saved.XXXXXX")" && cp -p "$policy" "$saved" || return 1
    fi
    # shellcheck disable=SC2064  # expand now: the trap must restore these very paths
    trap "if [ -n '$saved' ]; then mv -f '$saved' '$policy'; else rm -f '$policy'; fi" EXIT
    printf '#!/bin/sh\n# tools/run-tests: no service starts while it installs packages\nexit 101\n' >"$policy.syncrig-new" \
        && chmod 0755 "$policy.syncrig-new" && mv -f "$policy.syncrig-new" "$policy"
}

ensure_venv() {
    local extras="$1" py="${PYTHON:-python3}"
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "syncrig: needs Python >= 3.10 as '$py' (set PYTHON=/path/to/python3)" >&2
        return 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "syncrig: creating virtualenv in $VENV" >&2
        "$py" -m venv "$VENV" || {
            echo "syncrig: 'python3 -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
            return 1
        }
    fi
    local want have
    want="$(cat "$syncrig_root/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
    have="$(cat "$VENV/.syncrig-installed" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        echo "syncrig: installing Python packages ($extras) into $VENV" >&2
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$syncrig_root[$extras]" || return 1
        # Optional: python-prctl builds only where libcap headers exist; ctypes prctl is the fallback.
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q "python-prctl>=1.8" >/dev/null 2>&1 \
            || echo "syncrig: python-prctl not built (no libcap headers); timer slack set through ctypes" >&2
        # Tests check that aniposelib reads our calibration.toml. Its wheel pins the non-headless
        # OpenCV, so install it without dependencies, then its real ones; tests skip loudly if not.
        if [[ "$extras" == *test* ]]; then
            { "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps "aniposelib>=0.5" \
                && "$VENV/bin/python" -m pip install --disable-pip-version-check -q toml tqdm numba pandas; } \
                >/dev/null 2>&1 || echo "syncrig: aniposelib not installed; its compatibility test will skip" >&2
        fi
        echo "$want" > "$VENV/.syncrig-installed"
    fi
}
