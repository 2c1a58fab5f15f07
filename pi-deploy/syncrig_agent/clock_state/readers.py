"""Readers: run the daemons' own query tools (argv lists, never a shell, with a timeout) and turn
their output into a `ClockState`. A reader never raises: tool missing, timeout, garbage → the
kernel's view (adjtimex) with the reason, or "unknown" when that is unreadable too."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from syncrig_agent.clock_state.base import UNKNOWN, ClockState, unknown
from syncrig_agent.clock_state.chrony import ChronyParseError, chrony_state, parse_tracking
from syncrig_agent.clock_state.kernel import KernelClock, KernelClockError, kernel_state, read_kernel_clock
from syncrig_agent.clock_state.phc2sys import parse_phc2sys_log
from syncrig_agent.clock_state.pmc import QUERIES, PmcParseError, parse_pmc
from syncrig_agent.clock_state.ptp import ptp_state

COMMAND_TIMEOUT_S = 5.0
PTP4L_SOCKET = "/var/run/ptp4l"
# The privileged retry uses fixed paths so the sudoers drop-in can allow exactly one command line
# (a wildcard for a per-call client socket would also match extra pmc commands, e.g. SETs).
PMC_PROGRAM = "/usr/sbin/pmc"
PMC_SUDO_CLIENT = "/var/run/syncrig-pmc"


def pmc_sudo_argv(uds: str = PTP4L_SOCKET) -> list[str]:
    """The exact pmc command line an unprivileged agent may run through `sudo -n` (the deploy
    writes this line, and nothing wider, into the agent user's sudoers drop-in)."""
    return [PMC_PROGRAM, "-u", "-b", "0", "-s", uds, "-i", PMC_SUDO_CLIENT, *QUERIES]


PHC2SYS_UNIT = "syncrig-phc2sys.service"
#: Clock sources an agent can be told to use (`clock_source` setting).
CLOCK_SOURCES = ("auto", "ptp", "chrony", "kernel")


class CommandFailed(RuntimeError):
    pass


def run_command(argv: list[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """stdout of `argv` (C locale, so numbers and words are what the parsers expect)."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise CommandFailed(f"{argv[0]} not installed")
    env = {**os.environ, "LC_ALL": "C"}
    try:
        done = subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{argv[0]} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise CommandFailed(f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        msg = (done.stderr or done.stdout).strip().splitlines()
        raise CommandFailed(f"{argv[0]} exited {done.returncode}: {msg[-1] if msg else 'no output'}")
    return done.stdout


def running_daemons(proc: Path = Path("/proc")) -> set[str]:
    """Names of the time daemons running on this host (from /proc/<pid>/comm)."""
    wanted = {"ptp4l", "phc2sys", "chronyd", "ntpd", "systemd-timesyn"}
    found = set()
    for comm in proc.glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in wanted:
            found.add(name)
    return found


def _kernel() -> tuple[KernelClock | None, str | None]:
    try:
        return read_kernel_clock(), None
    except (KernelClockError, OSError, AttributeError) as exc:
        return None, str(exc)


def kernel_fallback(source: str, reason: str) -> ClockState:
    """When `source`'s daemon cannot be read: the kernel's verdict, saying why it is used."""
    k, err = _kernel()
    if k is None:
        return unknown(source, f"{reason}; kernel clock state unreadable too ({err})")
    state = kernel_state(k)
    state.detail = f"{source} state unreadable ({reason}); {state.detail}"
    return state


def pmc_output(uds: str = PTP4L_SOCKET) -> str:
    """One pmc run with the four GETs. ptp4l's socket is 0660 root, so an unprivileged agent gets no
    answer (pmc still exits 0); it then retries through `sudo -n` with `pmc_sudo_argv()`, which works
    only when the installer's sudoers drop-in allows exactly that call, and fails at once otherwise."""
    client = Path(tempfile.gettempdir()) / f"syncrig-pmc.{os.getpid()}.{time.monotonic_ns()}"
    argv = ["pmc", "-u", "-b", "0", "-s", uds, "-i", str(client), *QUERIES]
    try:
        try:
            out = run_command(argv)
            failure = None
        except CommandFailed as exc:
            out, failure = "", exc
        if "RESPONSE" in out or os.geteuid() == 0 or shutil.which("sudo") is None:
            if failure is not None:
                raise failure
            return out
        try:
            return run_command(["sudo", "-n", *pmc_sudo_argv(uds)])
        except CommandFailed as exc:
            raise CommandFailed(
                f"no answer from ptp4l as uid {os.geteuid()} (not running, or its root-owned 0660 "
                f"socket refuses this user) and sudo -n pmc is not allowed: {exc}"
            ) from None
    finally:
        with contextlib.suppress(OSError):  # (root's, after sudo: not ours to remove)
            client.unlink(missing_ok=True)


def journal_lines(unit: str = PHC2SYS_UNIT, lines: int = 20) -> str:
    return run_command(["journalctl", "-u", unit, "-o", "short-unix", "-n", str(lines), "--no-pager", "-q"])


class PtpReader:
    """ptp4l through pmc, phc2sys through its journal (or any text source given), kernel cross-check."""

    source = "ptp"

    def __init__(
        self,
        uds: str = PTP4L_SOCKET,
        pmc: Callable[[], str] | None = None,
        phc2sys_log: Callable[[], str] | None = None,
    ) -> None:
        self.pmc = pmc or (lambda: pmc_output(uds))
        self.phc2sys_log = phc2sys_log or journal_lines

    def read(self) -> ClockState:
        try:
            view = parse_pmc(self.pmc())
        except (CommandFailed, PmcParseError) as exc:
            return kernel_fallback("ptp", f"pmc: {exc}")
        note = None
        try:
            phc = parse_phc2sys_log(self.phc2sys_log())
            if phc is None:
                note = "no clock update in phc2sys's log (not running?)"
        except CommandFailed as exc:
            phc, note = None, f"phc2sys log: {exc}"
        kernel, _ = _kernel()
        return ptp_state(view, phc, kernel, time.time(), phc2sys_note=note)


class ChronyReader:
    source = "chrony"

    def __init__(self, socket: str | None = None, tracking: Callable[[], str] | None = None) -> None:
        host = ["-h", socket] if socket else []
        self.tracking = tracking or (lambda: run_command(["chronyc", *host, "-c", "-n", "tracking"]))

    def read(self) -> ClockState:
        try:
            return chrony_state(parse_tracking(self.tracking()))
        except (CommandFailed, ChronyParseError) as exc:
            return kernel_fallback("chrony", f"chronyc: {exc}")


class KernelReader:
    source = "kernel"

    def read(self) -> ClockState:
        k, err = _kernel()
        return kernel_state(k) if k is not None else unknown("unknown", f"adjtimex unreadable: {err}")


class AutoReader:
    """Whatever runs here: ptp4l → PTP, else chronyd → chrony, else the kernel's view."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.ptp = PtpReader()
        self.chrony = ChronyReader()
        self.kernel = KernelReader()

    def read(self) -> ClockState:
        daemons = running_daemons(self.proc)
        if "ptp4l" in daemons:
            state = self.ptp.read()
        elif "chronyd" in daemons:
            state = self.chrony.read()
        else:
            state = self.kernel.read()
        # Two disciplines on one clock fight each other (the clock slews between two servos).
        # (On a grandmaster phc2sys steers the PHC, so an NTP daemon on CLOCK_REALTIME is fine there.)
        others = {"chronyd", "ntpd", "systemd-timesyn"} & daemons
        phc2sys = state.components.get("phc2sys") or {}
        if others and phc2sys.get("target") == "CLOCK_REALTIME" and state.state != UNKNOWN:
            others = ", ".join(sorted(others))
            state.detail += f" — warning: {others} also running next to phc2sys (two servos on one clock)"
        return state


def make_reader(clock_source: str) -> Callable[[], ClockState]:
    readers = {"auto": AutoReader, "ptp": PtpReader, "chrony": ChronyReader, "kernel": KernelReader}
    if clock_source not in readers:
        raise ValueError(f"clock_source: must be one of {', '.join(CLOCK_SOURCES)}, got {clock_source!r}")
    return readers[clock_source]().read
