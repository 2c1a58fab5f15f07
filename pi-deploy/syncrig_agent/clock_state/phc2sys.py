"""phc2sys's view, from its own log lines.

phc2sys has no management socket of its own to ask (it is a pmc *client* of ptp4l), so its state
is read where it reports it: one line per clock update (1/s by default), in the journal of
syncrig-phc2sys.service (`journalctl -o short-unix`, so every line carries its Unix time):

    1795260679.070035 cam1 phc2sys[612]: CLOCK_REALTIME phc offset   -12 s2 freq  +1234 delay   567
    1795260679.070035 cam0 phc2sys[612]: eth0 sys offset    8 s2 freq  -20 delay   1100

`<target> <source label> offset <ns> s<servo state> freq <ppb> delay <ns>` (linuxptp phc2sys.c).
The target says the direction: `CLOCK_REALTIME phc` steers the system clock from the PHC (a
slave), `eth0 sys` steers the PHC from the system clock (the grandmaster, -a -rr). Servo states:
s0 unlocked, s1 clock step, s2 locked, s3 locked stable (linuxptp ≥ 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UPDATE = re.compile(
    r"(?P<target>\S+) (?P<label>phc|sys) offset\s+(?P<offset>[-+]?\d+) s(?P<servo>\d)"
    r" freq\s+(?P<freq>[-+]?\d+)(?: delay\s+(?P<delay>[-+]?\d+))?"
)
_SUMMARY = re.compile(
    r"(?P<target>\S+) (?:(?P<label>phc|sys) )?rms\s+(?P<rms>\d+) max\s+(?P<max>\d+) freq\s+"
    r"(?P<freq>[-+]?\d+) \+/-\s+\d+(?: delay\s+(?P<delay>\d+) \+/-\s+\d+)?"
)
_UNIX_TIME = re.compile(r"^(?P<t>\d{9,11}\.\d+)\s")

SERVO_STATES = {0: "unlocked", 1: "stepping", 2: "locked", 3: "locked"}
#: A phc2sys that has said nothing for this long has stopped updating (it logs once a second).
STALE_AFTER_S = 10.0


@dataclass
class Phc2sysView:
    target: str  # the clock being steered: CLOCK_REALTIME (slave) or the PHC/interface (grandmaster)
    source_label: str | None  # "phc" or "sys": what it is steered from
    offset_ns: int  # target − source at the last update (for a summary line: the rms)
    servo: str  # unlocked / stepping / locked
    freq_ppb: int | None
    delay_ns: int | None  # how long reading the source clock took
    logged_at: float | None  # Unix time of the line, when the log format carries it
    summary: bool = False

    @property
    def steers_system_clock(self) -> bool:
        return self.target == "CLOCK_REALTIME"

    def age_s(self, now: float) -> float | None:
        return None if self.logged_at is None else max(0.0, now - self.logged_at)


def parse_phc2sys_log(text: str) -> Phc2sysView | None:
    """The most recent clock update in `text` (journal or plain phc2sys output), or None."""
    last: Phc2sysView | None = None
    for line in text.splitlines():
        stamp = _UNIX_TIME.match(line)
        logged_at = float(stamp["t"]) if stamp else None
        m = _UPDATE.search(line)
        if m:
            servo_num = int(m["servo"])
            last = Phc2sysView(
                target=m["target"],
                source_label=m["label"],
                offset_ns=int(m["offset"]),
                servo=SERVO_STATES.get(servo_num, f"s{servo_num}"),
                freq_ppb=int(m["freq"]),
                delay_ns=int(m["delay"]) if m["delay"] is not None else None,
                logged_at=logged_at,
            )
            continue
        m = _SUMMARY.search(line)
        if m:
            # Summary lines (phc2sys -u N) carry no servo state; they are only printed while locked.
            last = Phc2sysView(
                target=m["target"],
                source_label=m["label"],
                offset_ns=int(m["rms"]),
                servo="locked",
                freq_ppb=int(m["freq"]),
                delay_ns=int(m["delay"]) if m["delay"] is not None else None,
                logged_at=logged_at,
                summary=True,
            )
    return last
