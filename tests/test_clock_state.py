"""Clock-state parsers and verdicts on recorded outputs (tests/fixtures/clock/README.md says which
are real runs), pre-flight's clock checks, and the background reader never blocking STATUS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from controller.rig.preflight import PreflightLimits, clock_sync_checks, grandmaster_checks, run_checks
from syncrig_agent.clock_state import AutoReader, ChronyReader, ClockMonitor, PtpReader, simulated_state
from syncrig_agent.clock_state.chrony import ChronyParseError, chrony_state, parse_tracking
from syncrig_agent.clock_state.kernel import STA_UNSYNC, KernelClock, kernel_state, read_kernel_clock
from syncrig_agent.clock_state.phc2sys import parse_phc2sys_log
from syncrig_agent.clock_state.pmc import PmcParseError, parse_pmc
from syncrig_agent.clock_state.ptp import ptp_state
from syncrig_agent.clock_state.readers import running_daemons
from syncrig_agent.settings import AgentSettings, SettingsError

FIXTURES = Path(__file__).parent / "fixtures" / "clock"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def kernel(unsync: bool, maxerror_us: int = 700) -> KernelClock:
    return KernelClock(STA_UNSYNC if unsync else 0, 5 if unsync else 0, maxerror_us, 20, 0, 0.0, 37)


def journal_view(name: str):
    view = parse_phc2sys_log(fixture(name))
    assert view is not None
    return view, view.logged_at + 1.0  # read one second after its last update


# -- pmc -----------------------------------------------------------------------------------------
def test_real_uncalibrated_slave_is_unsynchronized_with_its_numbers() -> None:
    view = parse_pmc(fixture("pmc_slave_uncalibrated_all.txt"))
    assert view.port_state == "UNCALIBRATED" and view.gm_present is True
    assert (view.master_offset_ns, view.offset_from_master_ns, view.mean_path_delay_ns) == (-577, -577, 3091)
    assert view.gm_identity == "fabc1b.fffe.6a5637" and view.gm_priority1 == 1
    state = ptp_state(view, None, kernel(False), now=0.0)
    assert state.state == "unsynchronized" and state.synchronized is False
    assert "UNCALIBRATED" in state.detail and "converging" in state.detail
    assert state.path_delay_ns == 3091 and state.grandmaster == "fabc1b.fffe.6a5637"


def test_locked_slave_needs_phc2sys_steering_the_system_clock() -> None:
    view = parse_pmc(fixture("pmc_slave_locked_all.txt"))
    phc, now = journal_view("phc2sys_slave_locked.journal")
    assert (phc.target, phc.source_label, phc.offset_ns, phc.servo, phc.delay_ns) == (
        "CLOCK_REALTIME",
        "phc",
        -6,
        "locked",
        699,
    )
    state = ptp_state(view, phc, kernel(False), now)
    assert state.state == "synchronized" and state.port_state == "SLAVE"
    assert state.offset_ns == -23 + -6  # PHC − master, plus CLOCK_REALTIME − PHC
    assert state.path_delay_ns == 1432 and state.grandmaster == "d83add.fffe.4c2190"
    assert not state.local_reference
    assert state.components["phc2sys"]["servo"] == "locked"

    # ptp4l alone (the first seed): the PHC is locked, CLOCK_REALTIME is not
    alone = ptp_state(view, None, kernel(True), now, phc2sys_note="no clock update in phc2sys's log")
    assert alone.state == "unsynchronized" and "locks only the PHC" in alone.detail
    # phc2sys's log unreadable, but the kernel says CLOCK_REALTIME is disciplined
    via_kernel = ptp_state(view, None, kernel(False), now, phc2sys_note="journalctl not installed")
    assert via_kernel.state == "synchronized" and "kernel" in via_kernel.detail
    # stopped phc2sys: its last line is a minute old
    stale = ptp_state(view, phc, kernel(False), now + 60)
    assert stale.state == "unsynchronized" and stale.servo_state == "stale"
    # phc2sys still stepping
    stepping = parse_phc2sys_log("\n".join(fixture("phc2sys_slave_locked.journal").splitlines()[:6]))
    assert stepping.servo == "stepping"
    assert ptp_state(view, stepping, kernel(False), stepping.logged_at).state == "unsynchronized"
    # the grandmaster's direction on a slave is wrong
    gm_dir, _ = journal_view("phc2sys_grandmaster.journal")
    wrong = ptp_state(view, gm_dir, kernel(False), now)
    assert wrong.state == "unsynchronized" and "wrong direction" in wrong.detail


def test_grandmaster_needs_phc2sys_in_the_reverse_direction() -> None:
    view = parse_pmc(fixture("pmc_grandmaster_all.txt"))  # real ptp4l output
    assert view.port_state == "MASTER" and view.gm_present is False and view.is_grandmaster
    phc, now = journal_view("phc2sys_grandmaster.journal")
    assert (phc.target, phc.source_label, phc.servo, phc.offset_ns) == ("eth0", "sys", "locked", 4)
    state = ptp_state(view, phc, kernel(True), now)
    assert state.state == "synchronized" and state.local_reference and state.offset_ns == 4
    free = ptp_state(view, None, kernel(True), now, phc2sys_note="no clock update in phc2sys's log")
    assert free.state == "unsynchronized" and "free-runs" in free.detail
    slave_dir, _ = journal_view("phc2sys_slave_locked.journal")
    assert "wrong direction" in ptp_state(view, slave_dir, kernel(False), now).detail


@pytest.mark.parametrize(
    ("name", "words"), [("pmc_listening_all.txt", "no PTP master"), ("pmc_faulty_all.txt", "faulty")]
)
def test_ports_not_locked_are_unsynchronized(name: str, words: str) -> None:
    phc, now = journal_view("phc2sys_slave_locked.journal")
    state = ptp_state(parse_pmc(fixture(name)), phc, kernel(False), now)
    assert state.state == "unsynchronized" and words in state.detail


@pytest.mark.parametrize(
    "name", ["pmc_garbage.txt", "pmc_truncated.txt", "pmc_management_error.txt", "pmc_no_ptp4l.txt"]
)
def test_bad_pmc_output_is_an_error_not_a_verdict(name: str) -> None:
    with pytest.raises(PmcParseError):
        parse_pmc(fixture(name))
    # ... and through the reader it becomes the kernel's view with the reason, never an exception
    state = PtpReader(pmc=lambda: fixture(name), phc2sys_log=lambda: "").read()
    assert state.state in ("synchronized", "unsynchronized", "unknown")
    assert "ptp state unreadable (pmc:" in state.detail or state.state == "unknown"


def test_pmc_empty_or_binary_output_does_not_raise() -> None:
    for text in ("", "\x00\xff" * 50, "sending: GET PORT_DATA_SET\n", "\t\tportState SLAVE\n"):
        state = PtpReader(pmc=lambda t=text: t, phc2sys_log=lambda: "").read()
        assert state.state != "synchronized" or state.source == "ntp"


# -- phc2sys -------------------------------------------------------------------------------------
def test_phc2sys_summary_and_waiting_logs() -> None:
    summary = parse_phc2sys_log(fixture("phc2sys_summary.journal"))
    assert summary.summary and summary.offset_ns == 14 and summary.steers_system_clock
    assert parse_phc2sys_log(fixture("phc2sys_waiting.journal")) is None
    # ptp4l's own "master offset" lines are not phc2sys updates
    assert parse_phc2sys_log("ptp4l[16298.504]: master offset   -12 s2 freq  +1234 path delay   567") is None


# -- chrony --------------------------------------------------------------------------------------
def test_chrony_synchronised_client_csv_and_text() -> None:
    csv = parse_tracking(fixture("chrony_tracking_client_synced.csv"))
    assert csv.refid == "0A420001" and csv.reference == "10.66.0.1" and csv.synchronized
    state = chrony_state(csv)
    assert state.state == "synchronized" and state.source == "chrony"
    assert state.offset_ns == -1095  # "+0.000001095" CSV correction: the clock is 1.1 µs slow
    assert state.grandmaster == "10.66.0.1" and not state.local_reference
    assert state.error_bound_ns == round((1.095e-6 + 1.633e-6 + 3.072e-6 / 2) * 1e9)
    text = chrony_state(parse_tracking(fixture("chrony_tracking_client_synced.txt")))
    assert text.offset_ns == -1095 and text.state == "synchronized"  # "0.000001095 seconds slow"
    assert text.components["chrony"]["frequency_ppm"] == pytest.approx(-0.042)  # "0.042 ppm slow"
    assert csv.frequency_ppm == pytest.approx(-0.042)


@pytest.mark.parametrize("ext", ["csv", "txt"])
def test_chrony_unsynchronised_and_local(ext: str) -> None:
    unsync = chrony_state(parse_tracking(fixture(f"chrony_tracking_unsynchronised.{ext}")))
    assert unsync.state == "unsynchronized" and "Not synchronised" in unsync.detail
    local = chrony_state(parse_tracking(fixture(f"chrony_tracking_local_reference.{ext}")))
    assert local.state == "synchronized" and local.local_reference and local.grandmaster == "local clock"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "506 Cannot talk to daemon\n",
        "0A420001,10.66.0.1,11,1795260783.2,0.0000015,-0.000000005\n",
        "0A420001,10.66.0.1,eleven,1795260783.2,0.1,0,0,0,0,0,0,0,0.3,Normal\n",
        "Reference ID    : 0A420001 (10.66.0.1)\nStratum         : 11\n",
        "Reference ID : x\nStratum : x\nSystem time : x\nLast offset : x\nRMS offset : x\nFrequency : x\n"
        "Root delay : x\nRoot dispersion : x\nUpdate interval : x\nLeap status : Normal\n",
    ],
)
def test_chrony_garbage_is_an_error_and_the_reader_survives_it(text: str) -> None:
    with pytest.raises(ChronyParseError):
        parse_tracking(text)
    state = ChronyReader(tracking=lambda: text).read()
    assert "chrony state unreadable" in state.detail or state.state == "unknown"


# -- kernel --------------------------------------------------------------------------------------
def test_kernel_view_is_read_and_judged() -> None:
    k = read_kernel_clock()  # adjtimex(2), read-only: works unprivileged on any Linux
    assert k.unsync == bool(k.status & STA_UNSYNC) or k.state == 5
    state = kernel_state(k)
    assert state.source == ("none" if k.unsync else "ntp")
    synced = kernel_state(kernel(False, maxerror_us=1500))
    assert synced.state == "synchronized" and synced.offset_ns is None and synced.error_bound_ns == 1_500_000
    assert kernel_state(kernel(True)).state == "unsynchronized"


def test_running_daemons_from_proc(tmp_path: Path) -> None:
    for pid, comm in ((10, "ptp4l"), (11, "phc2sys"), (12, "bash"), (13, "systemd-timesyn")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    assert running_daemons(tmp_path) == {"ptp4l", "phc2sys", "systemd-timesyn"}


# -- simulation and the monitor --------------------------------------------------------------------
def test_simulated_states() -> None:
    ok = simulated_state("synchronized", clock_now_ns=1_000_250_000, realtime_ns=1_000_000_000)
    assert ok.state == "synchronized" and ok.offset_ns == 250_000 and ok.source == "simulated"
    listening = simulated_state("LISTENING", 5, 5)
    assert listening.state == "unsynchronized" and listening.port_state == "LISTENING"
    assert simulated_state("unknown", 0, 0).state == "unknown"
    assert simulated_state("unsynchronized", 0, 0).synchronized is False


def test_settings_name_the_bad_clock_field(tmp_path: Path) -> None:
    base = {"name": "cam0", "role": "server", "data_dir": str(tmp_path), "secret_file": "s"}
    with pytest.raises(SettingsError, match="clock_source"):
        AgentSettings.from_dict({**base, "clock_source": "gps"})
    with pytest.raises(SettingsError, match="simulation.clock_sync"):
        AgentSettings.from_dict({**base, "simulation": {"clock_sync": "sort of"}})
    assert AgentSettings.from_dict({**base, "simulation": {"clock_sync": "FAULTY"}}).clock_source == "auto"


def test_monitor_never_blocks_status_and_survives_a_failing_reader() -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_reader():
        entered.set()
        release.wait(10)
        return simulated_state("synchronized", 0, 0)

    monitor = ClockMonitor(slow_reader, refresh_s=0.05).start()
    try:
        assert entered.wait(5)
        # the reader is stuck inside pmc/chronyc: STATUS still answers, saying so
        snap = monitor.snapshot()
        assert snap["state"] == "unknown" and "not read yet" in snap["detail"] and snap["age_s"] is None
        release.set()
        for _ in range(100):
            if monitor.snapshot()["state"] == "synchronized":
                break
            threading.Event().wait(0.05)
        assert monitor.snapshot()["source"] == "simulated"
    finally:
        release.set()
        monitor.close()

    def broken():
        raise RuntimeError("reader bug")

    failing = ClockMonitor(broken)
    failing.read_once()
    snap = failing.snapshot()
    assert snap["state"] == "unknown" and "reader bug" in snap["detail"]


# -- pre-flight ------------------------------------------------------------------------------------
def sync(**kw) -> dict:
    base = {"source": "ptp", "state": "synchronized", "offset_ns": 40, "port_state": "SLAVE", "detail": "d"}
    return {**base, **kw}


def test_preflight_clock_sync_rules() -> None:
    limits = PreflightLimits(max_sync_offset_us=100)

    def one(s, reference=False):
        (check,) = clock_sync_checks("cam1", s, reference, limits)
        return check

    assert one(sync()).ok and one(sync()).blocking
    bad = one(sync(state="unsynchronized", detail="PTP port LISTENING: no PTP master heard"))
    assert not bad.ok and bad.blocking and "not synchronised" in bad.message and "LISTENING" in bad.message
    far = one(sync(offset_ns=-250_000))
    assert not far.ok and far.blocking and "250.0 µs exceeds 100 µs" in far.message and far.value == 250.0
    unknown = one(sync(state="unknown", detail="adjtimex unreadable"))
    assert not unknown.ok and not unknown.blocking  # a warning, never a refusal
    assert not one(None).blocking
    # a plain NTP clock is judged by the kernel's error bound
    ntp = one(sync(source="ntp", offset_ns=None, error_bound_ns=3_000_000, port_state=None))
    assert not ntp.ok and "error bound" in ntp.message
    no_numbers = one(sync(source="ntp", offset_ns=None, port_state=None))
    assert not no_numbers.ok and no_numbers.blocking
    # chrony serving its own clock: fine on cam0 (the reference), refused on a client
    local = sync(source="chrony", local_reference=True, offset_ns=0)
    assert one(local, reference=True).ok and not one(local).ok
    stale = one(sync(age_s=120.0))
    assert not stale.ok and not stale.blocking


def test_preflight_refuses_a_second_grandmaster_and_keeps_the_reason_per_camera() -> None:
    def status(gm: str, **kw) -> dict:
        return {
            "state": "idle",
            "clock_sync": sync(grandmaster=gm, **kw),
            "health": {"disk": {"free_bytes": 10**12}},
        }

    st = {
        "server": {"name": "cam0", **status("aa.fffe.01")},
        "clients": {
            "cam1": {"connected": True, "status": status("aa.fffe.01"), "clock_offset_ns": 1000},
            "cam2": {"connected": True, "status": status("bb.fffe.02"), "clock_offset_ns": 1000},
        },
    }
    result = run_checks(st, ["cam0", "cam1", "cam2"], 1_000_000, 10, PreflightLimits())
    assert [(c.camera, c.check) for c in result.failures] == [("cam2", "clock_grandmaster")]
    assert "bb.fffe.02" in result.reason() and "aa.fffe.01" in result.reason()
    assert grandmaster_checks({}, []) == []


def fake_proc(root: Path, *names: str) -> Path:
    for pid, name in enumerate(names, start=100):
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "comm").write_text(name + "\n")
    return root


def test_auto_reader_picks_the_running_daemon_and_flags_two_servos(tmp_path: Path) -> None:
    # nothing running: the kernel's own view (this VM: unsynchronised or plain NTP)
    state = AutoReader(proc=fake_proc(tmp_path / "none", "bash")).read()
    assert state.source in ("none", "ntp", "unknown")
    # chronyd "running" but not answering: the reason is given, the kernel view is used
    state = AutoReader(proc=fake_proc(tmp_path / "chrony", "chronyd")).read()
    assert state.detail.startswith("chrony state unreadable") or state.state == "unknown"
    # ptp4l + phc2sys + systemd-timesyncd: locked, but two servos steer CLOCK_REALTIME
    reader = AutoReader(proc=fake_proc(tmp_path / "ptp", "ptp4l", "phc2sys", "systemd-timesyn"))
    now = time.time()
    fresh = "\n".join(
        f"{now - 5 + i:.6f} {line.split(' ', 1)[1]}"
        for i, line in enumerate(fixture("phc2sys_slave_locked.journal").splitlines())
    )
    reader.ptp = PtpReader(pmc=lambda: fixture("pmc_slave_locked_all.txt"), phc2sys_log=lambda: fresh)
    state = reader.read()
    assert state.source == "ptp" and state.state == "synchronized" and state.offset_ns == -29
    assert "systemd-timesyn also running next to phc2sys" in state.detail
