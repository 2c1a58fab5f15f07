"""Pre-flight checks before a recording: is every camera there, idle, on time, with room and cool?

Clock offsets are measured NTP-style over the control links (four timestamps per exchange, the
lowest-RTT sample wins): cam0 ↔ each client continuously over the fan-out links, desktop ↔ cam0 in
a dedicated burst. Never an SSH `date` (SqueakShot's constant +120 ms "skew" was the SSH round
trip). A failed check refuses the recording with its reason unless the user overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from syncrig_agent.contract.protocol.replies import ClientLink, RigStatus

# A status older than this means the camera is not really answering.
STATUS_FRESH_S = 3.5
# Headroom over the expected size: container overhead, bitrate overshoot, a longer session.
DISK_HEADROOM = 1.5


@dataclass(frozen=True)
class PreflightLimits:
    max_clock_offset_us: float = 1000.0
    #: Largest |offset| of a camera's clock from its time source (PTP master, NTP server) as its
    #: discipline daemon reports it. 100 µs: PTP with hardware timestamps holds well under 1 µs and
    #: chrony with hardware timestamps a few µs, so a locked servo never comes near it, while a
    #: clock still converging, stepping, or on plain NTP (ms) does — and it is 2× the 50 µs
    #: phase-lock goal, beyond which the rig cannot keep the grid it promises.
    max_sync_offset_us: float = 100.0
    #: A clock reading older than this means the agent's reader is stuck (pmc/chronyc hanging).
    max_clock_state_age_s: float = 30.0
    max_temperature_c: float = 80.0
    #: Expected length of a recording with no fixed duration, for the disk estimate.
    open_recording_s: float = 3600.0


# What each check is called on the page, and the unit of its value and limit: the page shows words,
# never the check's internal name.
CHECK_LABELS = {
    "online": ("Connected to cam0", None),
    "idle": ("Idle (not recording)", None),
    "clock_offset": ("Clock offset", "µs"),
    "clock_sync": ("Time synchronisation", "µs"),
    "clock_grandmaster": ("PTP grandmaster", None),
    "disk": ("Free disk space", "bytes"),
    "temperature": ("Temperature", "°C"),
    "throttling": ("Power and throttling", None),
    "throttling_history": ("Throttling since boot", None),
}


@dataclass
class Check:
    camera: str
    check: str
    ok: bool
    message: str
    value: float | str | None = None
    limit: float | str | None = None
    blocking: bool = True  # False: shown as a warning, never refuses a recording
    #: Nothing was measured (e.g. no temperature sensor): neither a pass nor a failure.
    unknown: bool = False

    def to_dict(self) -> dict:
        label, unit = CHECK_LABELS.get(self.check, (self.check.replace("_", " ").capitalize(), None))
        outcome = "pass" if self.ok else ("fail" if self.blocking else "warning")
        if self.unknown:
            outcome = "unknown"
        return {**asdict(self), "label": label, "unit": unit, "outcome": outcome}


@dataclass
class PreflightResult:
    checks: list[Check] = field(default_factory=list)
    planned_seconds: float | None = None
    expected_bytes_per_camera: int = 0
    desktop_clock: dict = field(default_factory=dict)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.blocking and not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def reason(self) -> str:
        return "; ".join(f"{c.camera}: {c.message}" for c in self.failures)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "reason": self.reason(),
            "planned_seconds": self.planned_seconds,
            "expected_bytes_per_camera": self.expected_bytes_per_camera,
            "desktop_clock": self.desktop_clock,
            "checks": [c.to_dict() for c in self.checks],
        }


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def expected_bytes(bitrate: int, seconds: float) -> int:
    return int(bitrate / 8 * seconds)


def run_checks(
    status: RigStatus | Mapping[str, Any],
    cameras: list[str],
    bitrate: int,
    planned_seconds: float | None,
    limits: PreflightLimits,
    desktop_clock: dict | None = None,
    desktop_free_bytes: int | None = None,
    clock_check: dict | None = None,
) -> PreflightResult:
    """`status`: cam0's STATUS (typed, or its JSON, which is read through `RigStatus`).
    `clock_check`: cam0's burst measurement per camera (``clock_check`` request); without it the
    offsets cam0's heartbeats keep are used (fewer samples, so noisier right after a connect)."""
    if not isinstance(status, RigStatus):
        status = RigStatus.from_dict(status, "status")
    seconds = planned_seconds if planned_seconds else limits.open_recording_s
    need = expected_bytes(bitrate, seconds)
    result = PreflightResult(
        planned_seconds=planned_seconds, expected_bytes_per_camera=need, desktop_clock=desktop_clock or {}
    )
    add = result.checks.append
    seen = status.camera_links()
    for name in cameras:
        cam = seen.get(name)
        if cam is None or not cam.connected or cam.status is None:
            add(Check(name, "online", False, "not connected to cam0"))
            continue
        reference = name == status.reference
        age = cam.status_age_s
        if age is not None and age > STATUS_FRESH_S:
            add(Check(name, "online", False, f"no status for {age:.1f} s", age, STATUS_FRESH_S))
            continue
        add(Check(name, "online", True, "connected"))
        st = cam.status
        busy = st.state == "recording"
        add(Check(name, "idle", not busy, "already recording" if busy else "idle"))
        offset = cam.clock_offset_ns
        measured = (clock_check or {}).get(name)
        if isinstance(measured, dict):
            offset = measured.get("offset_ns")
        if isinstance(measured, dict) and measured.get("error"):
            add(
                Check(name, "clock_offset", False, f"clock offset could not be measured: {measured['error']}")
            )
        elif offset is None:
            add(Check(name, "clock_offset", False, "clock offset not measured yet"))
        else:
            off_us = offset / 1e3
            ok = abs(off_us) <= limits.max_clock_offset_us
            what = "reference clock" if reference else f"clock offset to cam0 {off_us:+.1f} µs"
            add(Check(name, "clock_offset", ok, what, round(off_us, 1), limits.max_clock_offset_us))
        for check in clock_sync_checks(name, st.clock_sync, reference, limits):
            add(check)
        health = st.health or {}
        free = (health.get("disk") or {}).get("free_bytes")
        if free is None:
            add(Check(name, "disk", False, "free disk space not reported"))
        else:
            ok = free >= need * DISK_HEADROOM
            add(
                Check(
                    name,
                    "disk",
                    ok,
                    f"{human_bytes(free)} free, the recording needs ~{human_bytes(need)}",
                    free,
                    int(need * DISK_HEADROOM),
                )
            )
        temp = health.get("temperature_c")
        if temp is None:
            # Not a pass: nothing was measured (a Pi without the sensor, a simulated camera).
            add(Check(name, "temperature", False, "not reported by the camera", blocking=False, unknown=True))
        else:
            ok = temp <= limits.max_temperature_c
            add(Check(name, "temperature", ok, f"{temp:.1f} °C", temp, limits.max_temperature_c))
        throttled = health.get("throttled")
        if throttled is None:
            add(Check(name, "throttling", False, "not reported (not a Pi)", blocking=False, unknown=True))
        else:
            now = [k for k, v in throttled.items() if v and k != "raw" and not k.endswith("_occurred")]
            past = [k for k, v in throttled.items() if v and k.endswith("_occurred")]
            add(Check(name, "throttling", not now, ", ".join(now) or "not throttled"))
            if past:
                add(
                    Check(name, "throttling_history", False, "since boot: " + ", ".join(past), blocking=False)
                )
    for check in grandmaster_checks(seen, cameras, status.reference):
        add(check)
    if desktop_free_bytes is not None:
        total = need * len(cameras)
        ok = desktop_free_bytes >= total * DISK_HEADROOM
        add(
            Check(
                "desktop",
                "disk",
                ok,
                f"{human_bytes(desktop_free_bytes)} free for sessions, cameras need ~{human_bytes(total)}",
                desktop_free_bytes,
                int(total * DISK_HEADROOM),
            )
        )
    if desktop_clock:
        off = desktop_clock.get("offset_ns")
        if off is not None:
            # Informative: the desktop does not take part in the frame grid.
            add(
                Check(
                    "desktop",
                    "clock_offset",
                    True,
                    f"cam0 − desktop {off / 1e3:+.1f} µs (rtt {desktop_clock.get('rtt_ns', 0) / 1e3:.0f} µs)",
                    round(off / 1e3, 1),
                    None,
                    blocking=False,
                )
            )
    return result


def clock_sync_checks(name: str, sync: dict | None, reference: bool, limits: PreflightLimits) -> list[Check]:
    """Is this camera's clock disciplined, locked and close to its time source (STATUS `clock_sync`)?

    Unsynchronised, not locked, or off by more than the limit refuses the recording. "unknown" (the
    agent could read neither its daemon nor the kernel's adjtimex) only warns: refusing would block
    every rig whose tooling we cannot parse, while the offset each camera's clock has to cam0's is
    still measured over the network above and refuses at its own limit."""
    if not isinstance(sync, dict):
        return [Check(name, "clock_sync", False, "clock state not reported by the agent", blocking=False)]
    detail = str(sync.get("detail") or "")
    source = sync.get("source") or "?"
    age = sync.get("age_s")
    if isinstance(age, (int, float)) and age > limits.max_clock_state_age_s:
        return [
            Check(
                name,
                "clock_sync",
                False,
                f"clock state is {age:.0f} s old (the agent's reader is stuck): {detail}",
                round(age, 1),
                limits.max_clock_state_age_s,
                blocking=False,
            )
        ]
    state = sync.get("state")
    if state == "unsynchronized":
        return [Check(name, "clock_sync", False, f"clock not synchronised ({source}): {detail}")]
    if state != "synchronized":
        return [Check(name, "clock_sync", False, f"clock state unknown ({source}): {detail}", blocking=False)]
    if sync.get("local_reference") and source == "chrony" and not reference:
        return [
            Check(name, "clock_sync", False, f"follows its own clock, not cam0's (chrony `local`): {detail}")
        ]
    offset, bound = sync.get("offset_ns"), sync.get("error_bound_ns")
    limit = limits.max_sync_offset_us
    if offset is None and bound is None:
        return [Check(name, "clock_sync", False, f"synchronised ({source}) but no offset reported: {detail}")]
    value_us = abs(offset if offset is not None else bound) / 1e3
    what = "offset from its time source" if offset is not None else "error bound of its clock"
    lock = sync.get("port_state") or sync.get("servo_state") or "locked"
    ok = value_us <= limit
    message = f"{source} {lock}, {what} {value_us:.1f} µs" + ("" if ok else f" exceeds {limit:g} µs")
    return [Check(name, "clock_sync", ok, message, round(value_us, 3), limit)]


def grandmaster_checks(
    seen: dict[str, ClientLink], cameras: list[str], reference: str | None = None
) -> list[Check]:
    """Every PTP camera must follow the same grandmaster: two grandmasters (two PTP domains, a
    partitioned switch) are two timescales, each camera locked and the rig still out of sync.
    `seen`: `RigStatus.camera_links()`; `reference`: cam0's name, whose grandmaster is the rig's
    (without it, or when cam0 follows none, the one most cameras follow)."""
    gms: dict[str, str] = {}
    for name in cameras:
        link = seen.get(name)
        sync = (link.status.clock_sync if link is not None and link.status else None) or {}
        if sync.get("source") == "ptp" and sync.get("state") == "synchronized" and sync.get("grandmaster"):
            gms[name] = str(sync["grandmaster"])
    if len(set(gms.values())) <= 1:
        return []
    expected = gms.get(reference or "") or max(set(gms.values()), key=list(gms.values()).count)
    return [
        Check(name, "clock_grandmaster", False, f"follows PTP grandmaster {gm}, the rig follows {expected}")
        for name, gm in gms.items()
        if gm != expected
    ]
