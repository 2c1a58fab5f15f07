# Sourced by tools/syncrig and tools/run-tests: creates or refreshes the project's virtualenv so
# that a fresh clone needs nothing installed by hand (python3 with venv is the only requirement).
# shellcheck shell=bash

syncrig_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SYNCRIG_VENV:-$syncrig_root/.venv}"

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
