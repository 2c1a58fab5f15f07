"""chrony's view, from `chronyc -c tracking` (CSV, preferred) or plain `chronyc tracking`.

CSV fields, in order (chronyc 4.x; see tests/fixtures/clock/chrony_*.csv, recorded from chronyd
4.3): reference ID (hex), reference name/address, stratum, reference time (Unix s), system time
correction (s; positive = the clock is *slow*), last offset, RMS offset, frequency (ppm, positive =
fast), residual frequency, skew, root delay, root dispersion, update interval, leap status.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncrig_agent.clock_state.base import SYNCHRONIZED, UNSYNCHRONIZED, ClockState

#: chrony's reference ID when it serves its own clock (`local stratum N`): "LOCL".
LOCAL_REFID = "7F7F0101"
UNSYNC_REFID = "00000000"

_TEXT_KEYS = {
    "Reference ID": "refid",
    "Stratum": "stratum",
    "System time": "system_time",
    "Last offset": "last_offset",
    "RMS offset": "rms_offset",
    "Frequency": "frequency",
    "Root delay": "root_delay",
    "Root dispersion": "root_dispersion",
    "Update interval": "update_interval",
    "Leap status": "leap",
}


class ChronyParseError(ValueError):
    """Not chronyc tracking output."""


@dataclass
class ChronyTracking:
    refid: str
    reference: str
    stratum: int
    correction_s: float  # positive: the system clock is behind (slow of) NTP time
    last_offset_s: float
    rms_offset_s: float
    frequency_ppm: float
    root_delay_s: float
    root_dispersion_s: float
    update_interval_s: float
    leap: str

    @property
    def synchronized(self) -> bool:
        return self.refid != UNSYNC_REFID and self.leap != "Not synchronised"

    @property
    def local_reference(self) -> bool:
        return self.refid == LOCAL_REFID

    def error_bound_s(self) -> float:
        # chrony's documented bound: |system time offset| + root dispersion + root delay / 2.
        return abs(self.correction_s) + self.root_dispersion_s + self.root_delay_s / 2


def parse_tracking_csv(text: str) -> ChronyTracking:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        raise ChronyParseError(f"expected one CSV line from chronyc -c tracking, got {len(lines)}")
    cols = lines[0].split(",")
    if len(cols) < 14:
        raise ChronyParseError(f"expected 14 CSV fields from chronyc -c tracking, got {len(cols)}")
    try:
        return ChronyTracking(
            refid=cols[0].upper(),
            reference=cols[1],
            stratum=int(cols[2]),
            correction_s=float(cols[4]),
            last_offset_s=float(cols[5]),
            rms_offset_s=float(cols[6]),
            frequency_ppm=float(cols[7]),
            root_delay_s=float(cols[10]),
            root_dispersion_s=float(cols[11]),
            update_interval_s=float(cols[12]),
            leap=cols[13].strip(),
        )
    except ValueError as exc:
        raise ChronyParseError(f"unreadable chronyc CSV field: {exc}") from None


def _seconds(value: str, negative_word: str) -> float:
    """'0.000001507 seconds slow of NTP time' → signed seconds ('slow' / 'fast' decide the sign)."""
    words = value.split()
    number = float(words[0])
    return -number if negative_word in words[1:] else number


def parse_tracking_text(text: str) -> ChronyTracking:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _TEXT_KEYS:
            fields[_TEXT_KEYS[key.strip()]] = value.strip()
    missing = sorted(set(_TEXT_KEYS.values()) - set(fields))
    if missing:
        raise ChronyParseError(f"chronyc tracking output lacks {', '.join(missing)}")
    try:
        refid, _, name = fields["refid"].partition(" ")
        return ChronyTracking(
            refid=refid.upper(),
            reference=name.strip().strip("()"),
            stratum=int(fields["stratum"]),
            # "N seconds slow of NTP time" is a positive correction (CSV sign), "fast" negative.
            correction_s=_seconds(fields["system_time"], "fast"),
            last_offset_s=float(fields["last_offset"].split()[0]),
            rms_offset_s=float(fields["rms_offset"].split()[0]),
            frequency_ppm=_seconds(fields["frequency"], "slow"),
            root_delay_s=float(fields["root_delay"].split()[0]),
            root_dispersion_s=float(fields["root_dispersion"].split()[0]),
            update_interval_s=float(fields["update_interval"].split()[0]),
            leap=fields["leap"],
        )
    except (ValueError, IndexError) as exc:
        raise ChronyParseError(f"unreadable chronyc tracking value: {exc}") from None


def parse_tracking(text: str) -> ChronyTracking:
    """Either format: CSV when the first line has commas."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not first:
        raise ChronyParseError("empty chronyc output")
    return (
        parse_tracking_csv(text)
        if "," in first and ":" not in first.split(",")[0]
        else parse_tracking_text(text)
    )


def chrony_state(tracking: ChronyTracking) -> ClockState:
    t = tracking
    components = {
        "chrony": {
            "refid": t.refid,
            "stratum": t.stratum,
            "last_offset_ns": round(t.last_offset_s * 1e9),
            "rms_offset_ns": round(t.rms_offset_s * 1e9),
            "frequency_ppm": t.frequency_ppm,
            "root_delay_ns": round(t.root_delay_s * 1e9),
            "root_dispersion_ns": round(t.root_dispersion_s * 1e9),
            "update_interval_s": t.update_interval_s,
        }
    }
    reference = "local clock" if t.local_reference else (t.reference or t.refid)
    if not t.synchronized:
        return ClockState(
            source="chrony",
            state=UNSYNCHRONIZED,
            servo_state=t.leap,
            detail=f"chronyd is not synchronised (leap status {t.leap!r}, no selected source)",
            components=components,
        )
    offset_ns = -round(t.correction_s * 1e9)  # this clock − NTP time
    detail = f"chronyd follows {reference} (stratum {t.stratum}), offset {offset_ns / 1e3:+.1f} µs"
    if t.local_reference:
        detail = "chronyd serves its own clock (`local stratum`): the reference for others, follows nobody"
    return ClockState(
        source="chrony",
        state=SYNCHRONIZED,
        offset_ns=offset_ns,
        servo_state=t.leap,
        grandmaster=reference,
        local_reference=t.local_reference,
        error_bound_ns=round(t.error_bound_s() * 1e9),
        detail=detail,
        components=components,
    )
