"""The shipped time configs, run for real where the tools exist (skipped loudly otherwise):
ptp4l grandmaster + slave across a veth between two network namespaces, read back through the
agent's own PTP reader; two chronyd the same way through its chrony reader; `chronyd -p` on the
rendered drop-in; `systemd-analyze verify` on the rendered units."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from syncrig_agent.clock_state import ChronyReader, PtpReader
from syncrig_agent.clock_state.readers import run_command

from session_checks import wait_for

REPO = Path(__file__).resolve().parent.parent
TIME_DIR = REPO / "pi-deploy" / "time"
UNIT_DIR = REPO / "pi-deploy" / "systemd"
TIME_UNITS = ("syncrig-ptp4l.service", "syncrig-phc2sys.service")


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"NOT RUN: {', '.join(missing)} not installed (apt-get install linuxptp chrony)")


def need_root_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("NOT RUN: network namespaces need root")
    need("ip")


# The namespaces share this host's CLOCK_REALTIME, so every ptp4l, phc2sys and chronyd here runs
# without CAP_SYS_TIME (dropped from its bounding set, so no child regains it): whatever its servo
# decides, the kernel refuses to step or slew the host clock. Their own switches say the same
# (ptp4l --free_running 1, chronyd -x); assert_cannot_steer checks both before anything starts.
CAP_SYS_TIME = 25  # linux/capability.h
NO_CLOCK_RIGHTS = ["setpriv", "--bounding-set", "-sys_time", "--"]


def without_clock_rights(argv: list[str]) -> list[str]:
    return [*NO_CLOCK_RIGHTS, *argv]


def assert_cannot_steer(argv: list[str]) -> None:
    """Refuse to start a clock servo that could adjust this host's clock."""
    servos = {"ptp4l", "phc2sys", "chronyd"} & set(argv)
    if not servos:
        return
    assert argv[: len(NO_CLOCK_RIGHTS)] == NO_CLOCK_RIGHTS, f"servo started with CAP_SYS_TIME: {argv}"
    if "ptp4l" in servos:
        pairs = list(zip(argv, argv[1:], strict=False))
        assert ("--free_running", "1") in pairs, f"ptp4l must run --free_running 1: {argv}"
    if "chronyd" in servos:
        assert "-x" in argv, f"chronyd must run -x (never touches the clock): {argv}"


def need_setpriv() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("NOT RUN: setpriv (util-linux) missing; clock servos must not run with CAP_SYS_TIME")


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z]+@", text)
    assert not left, f"placeholders left unrendered: {left}"
    return text


def test_units_use_only_the_agreed_placeholders_and_verify(tmp_path: Path) -> None:
    for unit in TIME_UNITS:
        assert set(re.findall(r"@[A-Z]+@", (UNIT_DIR / unit).read_text())) <= {"@IFACE@", "@CONF@"}, unit
    assert set(re.findall(r"@[A-Z]+@", (TIME_DIR / "chrony-syncrig.conf").read_text())) == {"@SERVER@"}
    need("systemd-analyze", "ptp4l", "phc2sys")
    for unit in TIME_UNITS:
        text = render((UNIT_DIR / unit).read_text(), {"IFACE": "eth0", "CONF": str(TIME_DIR / "ptp4l.conf")})
        (tmp_path / unit).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u) for u in TIME_UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # (a unit naming a missing binary or a bad directive makes this fail: checked by hand)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "phc2sys -a -rr" in (tmp_path / "syncrig-phc2sys.service").read_text()


def test_chrony_dropin_parses(tmp_path: Path) -> None:
    need("chronyd")
    conf = tmp_path / "syncrig.conf"
    conf.write_text(render((TIME_DIR / "chrony-syncrig.conf").read_text(), {"SERVER": "10.0.0.10"}))
    done = subprocess.run(["chronyd", "-p", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    assert "server 10.0.0.10 iburst minpoll -2 maxpoll -2 xleave prefer" in printed
    assert "hwtimestamp *" in printed and "makestep 0.1 3" in printed


@contextmanager
def veth_pair(tag: str):
    """Two namespaces `<tag>a` (10.77.0.1) and `<tag>b` (10.77.0.2) joined by a veth."""
    a, b = f"{tag}a", f"{tag}b"
    cmds = [
        ["ip", "netns", "add", a],
        ["ip", "netns", "add", b],
        ["ip", "link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb"],
        ["ip", "link", "set", f"{tag}va", "netns", a],
        ["ip", "link", "set", f"{tag}vb", "netns", b],
        ["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", f"{tag}va"],
        ["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", f"{tag}vb"],
        ["ip", "-n", a, "link", "set", f"{tag}va", "up"],
        ["ip", "-n", b, "link", "set", f"{tag}vb", "up"],
        ["ip", "-n", a, "link", "set", "lo", "up"],
        ["ip", "-n", b, "link", "set", "lo", "up"],
    ]
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def spawn(stack: ExitStack, argv: list[str], log: Path) -> subprocess.Popen:
    assert_cannot_steer(argv)
    fh = stack.enter_context(open(log, "w"))
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    stack.callback(stop)
    return proc


def test_servos_here_run_without_the_right_to_steer_the_clock() -> None:
    need_setpriv()
    status = subprocess.run(
        without_clock_rights(["cat", "/proc/self/status"]),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    caps = dict(line.split(":\t", 1) for line in status.splitlines() if line.startswith("Cap"))
    for kind in ("CapBnd", "CapEff", "CapPrm"):
        assert not int(caps[kind], 16) & (1 << CAP_SYS_TIME), (kind, caps)
    with pytest.raises(AssertionError, match="CAP_SYS_TIME"):
        assert_cannot_steer(["ip", "netns", "exec", "x", "chronyd", "-x"])
    with pytest.raises(AssertionError, match="free_running 1"):
        assert_cannot_steer(without_clock_rights(["ptp4l", "-S", "--free_running", "0"]))
    with pytest.raises(AssertionError, match="free_running 1"):
        assert_cannot_steer(without_clock_rights(["ptp4l", "-S"]))
    with pytest.raises(AssertionError, match="-x"):
        assert_cannot_steer(without_clock_rights(["chronyd", "-d"]))


def test_real_ptp4l_master_and_slave_read_through_the_agent(tmp_path: Path) -> None:
    """Shipped configs, software timestamps (no PHC in a VM). The slave runs --free_running 1: the
    namespaces share CLOCK_REALTIME, so a steering slave would adjust the host clock. A free-running
    slave never leaves UNCALIBRATED, which is itself a state the reader must call unsynchronised."""
    need_root_netns()
    need_setpriv()
    need("ptp4l", "pmc")
    tag = f"sr{os.getpid() % 100000}"
    uds = {"master": str(tmp_path / "gm.uds"), "slave": str(tmp_path / "slave.uds")}
    with veth_pair(tag) as (ns_a, ns_b), ExitStack() as stack:
        gm = spawn(
            stack,
            without_clock_rights(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns_a,
                    "ptp4l",
                    "-f",
                    str(TIME_DIR / "ptp4l-grandmaster.conf"),
                    "-i",
                    f"{tag}va",
                    "-S",
                    "-m",
                    "--uds_address",
                    uds["master"],
                    "--free_running",
                    "1",
                ]
            ),
            tmp_path / "gm.log",
        )
        slave = spawn(
            stack,
            without_clock_rights(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns_b,
                    "ptp4l",
                    "-f",
                    str(TIME_DIR / "ptp4l.conf"),
                    "-i",
                    f"{tag}vb",
                    "-S",
                    "-m",
                    "--uds_address",
                    uds["slave"],
                    "--free_running",
                    "1",
                ]
            ),
            tmp_path / "slave.log",
        )
        reader = PtpReader(uds=uds["slave"], phc2sys_log=lambda: "")

        def slave_has_master():
            state = reader.read()
            ptp = state.components.get("ptp4l") or {}
            return state if state.port_state in ("UNCALIBRATED", "SLAVE") and ptp.get("gm_present") else None

        state = wait_for(slave_has_master, 20, "the slave choosing the grandmaster", interval=0.25)
        assert gm.poll() is None and slave.poll() is None, (tmp_path / "slave.log").read_text()
        master = PtpReader(uds=uds["master"], phc2sys_log=lambda: "").read()
        assert master.port_state == "MASTER" and master.local_reference is False
        # the grandmaster without phc2sys steering its PHC: refused, with the reason
        assert master.state == "unsynchronized" and "free-runs" in master.detail
        assert state.grandmaster == master.grandmaster
        samples = []
        for _ in range(12):
            s = reader.read()
            samples.append((s.components["ptp4l"]["master_offset_ns"], s.path_delay_ns))
            time.sleep(0.25)
        # Software timestamps on a loaded 2-vCPU VM: single samples can be wild (even a negative
        # delay), so judge the medians of the samples pmc answered completely.
        valid = [(o, d) for o, d in samples if o is not None and d is not None]
        assert len(valid) >= len(samples) // 2, samples
        offsets = sorted(abs(o) for o, _ in valid)
        delays = sorted(d for _, d in valid)
        print(
            f"\nreal ptp4l -S over a veth: |master_offset| median {offsets[len(offsets) // 2]} ns, "
            f"max {offsets[-1]} ns; mean path delay median {delays[len(delays) // 2]} ns (n={len(valid)})"
        )
        assert state.source == "ptp" and state.state == "unsynchronized"  # UNCALIBRATED, no phc2sys
        assert 0 < delays[len(delays) // 2] < 1_000_000, samples
        assert offsets[len(offsets) // 2] < 1_000_000, samples  # one host clock: sub-ms even in software
        # phc2sys -a -rr with the same config reaches ptp4l through its socket. (A VM has no PHC,
        # so it stops at "no suitable ports available"; steering one needs a Pi 5.)
        phc_conf = tmp_path / "phc2sys.conf"
        phc_conf.write_text(
            (TIME_DIR / "ptp4l-grandmaster.conf").read_text().replace("/var/run/ptp4l", uds["master"])
        )
        if shutil.which("phc2sys"):
            phc2sys = without_clock_rights(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns_a,
                    "timeout",
                    "4",
                    "phc2sys",
                    "-a",
                    "-rr",
                    "-f",
                    str(phc_conf),
                    "-m",
                    "-q",
                ]
            )
            assert_cannot_steer(phc2sys)
            phc = subprocess.run(
                phc2sys,
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert "no suitable ports available" in phc.stdout + phc.stderr, phc.stdout + phc.stderr
        logs = (tmp_path / "gm.log").read_text() + (tmp_path / "slave.log").read_text()
        assert "unknown option" not in logs.lower() and "failed to parse" not in logs.lower(), logs


def test_real_chronyd_pair_read_through_the_agent(tmp_path: Path) -> None:
    """The shipped drop-in on a server (cam0) and a client, chronyd -x (never touches the host clock)."""
    need_root_netns()
    need_setpriv()
    need("chronyd", "chronyc")
    tag = f"sc{os.getpid() % 100000}"
    run = tmp_path / "run"
    run.mkdir(mode=0o700)  # chronyd refuses a command socket in a directory others can enter
    with veth_pair(tag) as (ns_a, ns_b), ExitStack() as stack:
        for role, ns in (("server", ns_a), ("client", ns_b)):
            conf = render((TIME_DIR / "chrony-syncrig.conf").read_text(), {"SERVER": "10.77.0.1"})
            conf += (
                f"pidfile {run}/{role}.pid\nbindcmdaddress {run}/{role}.sock\ncmdport 0\n"
                f"driftfile {run}/{role}.drift\n"
            )
            (run / f"{role}.conf").write_text(conf)
            spawn(
                stack,
                without_clock_rights(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "chronyd",
                        "-u",
                        "root",
                        "-x",
                        "-d",
                        "-f",
                        str(run / f"{role}.conf"),
                    ]
                ),
                tmp_path / f"chronyd-{role}.log",
            )
        client = ChronyReader(socket=str(run / "client.sock"))
        state = wait_for(
            lambda: (s := client.read()).state == "synchronized" and not s.local_reference and s,
            20,
            "the client chronyd selecting cam0",
            interval=0.25,
        )
        assert state.grandmaster == "10.77.0.1" and state.source == "chrony"
        assert abs(state.offset_ns) < 100_000 and state.error_bound_ns > 0
        server = ChronyReader(socket=str(run / "server.sock")).read()
        assert server.state == "synchronized" and server.local_reference
        print(
            f"\nreal chronyd pair over a veth: client offset {state.offset_ns} ns, "
            f"bound {state.error_bound_ns} ns"
        )
        out = run_command(["chronyc", "-h", str(run / "client.sock"), "sources"])
        assert "10.77.0.1" in out
