"""Host health the agent reports in STATUS: disk, temperature, throttling, load.

On a Pi the throttling bits come from `vcgencmd get_throttled`; elsewhere those fields are None
(unknown), never a made-up "OK".
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Bit meanings of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def decode_throttled(value: int) -> dict[str, bool]:
    return {name: bool(value >> bit & 1) for bit, name in THROTTLE_BITS.items()}


def read_throttled() -> dict | None:
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=2).stdout
        raw = int(out.strip().split("=", 1)[1], 16)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return {"raw": raw, **decode_throttled(raw)}


def read_temperature_c() -> float | None:
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp")):
        try:
            return int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


def health_report(data_dir: Path | str) -> dict:
    try:
        usage = shutil.disk_usage(data_dir)
        disk = {"free_bytes": usage.free, "total_bytes": usage.total}
    except OSError:
        disk = {"free_bytes": None, "total_bytes": None}
    return {
        "disk": disk,
        "temperature_c": read_temperature_c(),
        "throttled": read_throttled(),
        "load_avg": list(os.getloadavg()),
    }
