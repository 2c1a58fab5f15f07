"""One recording with one fault injected at a given instant, and what it cost (the fault matrix's
unit, benchmarks/fault_matrix.py; tests/test_fault_matrix.py runs a few).

A run records an open-ended session on a simulated rig (live streams on), injects the fault, presses
Stop, then checks the session: it syncs (match + synced outputs), every frame any component had
(the Pi's file, whole frames, at the moment of collection; the live receiver's spool) is in raw/,
the manifest's counts equal the files, and the fault is stated in the manifest, the sync report and
what the session page shows. Then the rig is healed for the next run (the killed part restarted)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "pi-deploy", REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from controller.pipeline.sync import SyncRequest, sync_session  # noqa: E402
from controller.receivers.sidecar import read_stream_table  # noqa: E402
from controller.rig.config import load_config  # noqa: E402
from controller.rig.recording import RecordingError, RecordingRequest, begin_recording, finish_recording  # noqa: E402
from controller.rig.simulated import SimCamera, SimulatedRig  # noqa: E402
from controller.session.store import recording_faults  # noqa: E402
from controller.transfer.collect import Collection  # noqa: E402
from controller.transfer.reconcile import read_torn_frame_table  # noqa: E402
from syncrig_agent.contract.formats import read_frame_table, read_manifest, read_manifest_data, read_pts  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402

FPS = 30.0
CLIENT, SERVER, STREAMED = "cam2", "cam0", "cam1"  # the client faulted, cam0, the camera whose receiver is


@dataclass(frozen=True)
class Fault:
    key: str
    component: str
    camera: str  # whose recording the fault hits
    how: str  # KILL, STOP (SIGSTOP), CUT (link down)
    stated_as: str  # a regex the manifest, report and page must contain


FAULTS: dict[str, Fault] = {
    f.key: f
    for f in (
        Fault("client-agent:KILL", "client agent", CLIENT, "KILL", rf"{CLIENT}.*lost"),
        Fault("client-agent:STOP", "client agent", CLIENT, "STOP", rf"{CLIENT}.*lost"),
        Fault("cam0-agent:KILL", "cam0 agent", SERVER, "KILL", rf"{SERVER}.*lost|cam0 unreachable"),
        Fault("cam0-agent:STOP", "cam0 agent", SERVER, "STOP", rf"{SERVER}.*lost|cam0 unreachable"),
        Fault("sidecar:KILL", "receiver side-car", STREAMED, "KILL", rf"{STREAMED}: live receiver restarted"),
        Fault("ffmpeg:KILL", "FFmpeg receiver", STREAMED, "KILL", rf"{STREAMED}: live receiver restarted"),
        Fault("controller:KILL", "controller", SERVER, "KILL", "re-attached"),
        Fault("client-link:CUT", "client network link", CLIENT, "CUT", rf"{CLIENT}.*lost"),
    )
}


@dataclass
class RunResult:
    fault: str
    instant_s: float  # fault injected this long after T0
    session: str | None = None
    usable: bool = False
    problems: list[str] = field(default_factory=list)
    frames_lost: int = 0  # frames a component had that raw/ does not
    frames_kept: dict[str, int] = field(default_factory=dict)
    stated: bool = False
    started: bool = False  # the recording started and the fault was injected (else the run is redone)
    stop_s: float | None = None  # Stop pressed → manifest written
    sync_s: float | None = None  # match + report (+ synced outputs)

    def as_dict(self) -> dict:
        return asdict(self)


def make_rig(workdir: Path, heartbeat_timeout_s: float) -> SimulatedRig:
    cameras = [SimCamera(f"cam{i}") for i in range(3)]
    return SimulatedRig(
        workdir, cameras, width=320, height=240, bitrate=1_000_000, heartbeat_timeout_s=heartbeat_timeout_s
    ).start()


def _frames_had(rig: SimulatedRig, session: Path, camera: str) -> set[int]:
    """Every frame some component held at collection time: the Pi's whole frames, the spool's."""
    had: set[int] = set()
    pi = SessionLayout(rig.data_dir(camera) / session.name).raw
    rows, _torn = read_torn_frame_table(pi.frames(camera))
    size = pi.video(camera).stat().st_size if pi.video(camera).exists() else 0
    ends = np.cumsum([r.size for r in rows]) if rows else np.zeros(0)
    had.update(i for i, end in enumerate(ends.tolist()) if end <= size)
    spool = SessionLayout(session).stream.files(camera)
    if spool["frames"].exists():
        spool_size = spool["h264"].stat().st_size
        had.update(
            r.row.frame for r in read_stream_table(spool["frames"]) if r.offset + r.row.size <= spool_size
        )
    return had


def _counts_problems(session: Path) -> list[str]:
    """The manifest's counts against the files in raw/."""
    problems = []
    raw = SessionLayout(session).raw
    for cam in read_manifest(session).cameras:
        name = cam["name"]
        table = read_frame_table(raw.frames(name))
        rows, pts = int(table["frame"].size), len(read_pts(raw.pts(name)))
        video = raw.video(name).stat().st_size
        if not cam["frames"] == rows == pts:
            problems.append(f"{name}: manifest {cam['frames']} frames, table {rows}, pts {pts}")
        if int(table["size"].sum()) != video:
            problems.append(f"{name}: table sizes {int(table['size'].sum())} B, video {video} B")
        counted = sum(cam["drops"].values())
        if cam["expected_frames"] != cam["frames"] + cam["dropped"] or cam["dropped"] != counted:
            problems.append(f"{name}: expected/dropped/drops disagree: {cam}")
    return problems


def evaluate(
    result: RunResult, session: Path, had: dict[str, set[int]], fault: Fault, outputs: bool = True
) -> None:
    """Fill in usable, frames lost, counts and stated (the run's verdict)."""
    result.session = session.name
    kept = {}
    for camera, frames in had.items():
        try:
            n = int(read_frame_table(SessionLayout(session).raw.frames(camera))["frame"].size)
        except (OSError, ValueError) as exc:
            result.problems.append(f"{camera}: raw/ unreadable: {exc}")
            n = 0
        kept[camera] = n
        result.frames_lost += sum(1 for i in frames if i >= n)
    result.frames_kept = kept
    result.problems += _counts_problems(session)
    try:
        synced_at = time.monotonic()
        report = sync_session(session, SyncRequest(outputs=outputs)).report
        result.sync_s = round(time.monotonic() - synced_at, 2)
        missing = [c for c in kept if c not in report["cameras"]]
        if missing:
            result.problems.append(f"sync left out {missing}")
    except Exception as exc:  # the verdict: any failure makes the session unusable
        result.problems.append(f"sync failed: {type(exc).__name__}: {exc}")
        report = {}
    manifest = read_manifest_data(session)
    said = {
        "manifest": " ".join(
            [
                *manifest.get("notes", []),
                *(
                    f"{c['name']}: {'lost' if c.get('lost') else ''} {c.get('error') or ''}"
                    for c in manifest["cameras"]
                ),
            ]
        ),
        "report": " ".join([*report.get("verdict_reasons", []), *report.get("notes", [])]),
        "page": " ".join(recording_faults(manifest)),
    }
    unstated = [where for where, text in said.items() if not re.search(fault.stated_as, text)]
    result.stated = not unstated
    if unstated:
        result.problems.append(f"fault not stated in {unstated}")
    result.usable = not result.problems and result.frames_lost == 0


def _inject(rig: SimulatedRig, collection: Collection, session: Path, fault: Fault) -> None:
    if fault.component.endswith("agent"):
        os.kill(rig.processes[fault.camera].pid, signal.SIGKILL if fault.how == "KILL" else signal.SIGSTOP)
    elif fault.component == "receiver side-car":
        os.kill(collection.receivers.pid(fault.camera), signal.SIGKILL)
    elif fault.component == "FFmpeg receiver":
        status = json.loads(SessionLayout(session).stream.files(fault.camera)["status"].read_text())
        os.kill(int(status["ffmpeg_pid"]), signal.SIGKILL)
    elif fault.component == "client network link":
        rig.topology.set_link(fault.camera, up=False)


def heal(rig: SimulatedRig, fault: Fault) -> None:
    """Back to a whole rig for the next run: a frozen agent resumed, a killed one restarted, a cut
    link up again; then every client connected to cam0."""
    if fault.component.endswith("agent"):
        rig.restart_agent(fault.camera)  # SIGCONT for a frozen one comes with it
    if fault.component == "client network link":
        rig.topology.set_link(fault.camera, up=True)
    rig.wait_connected(60.0)


def run_once(
    rig: SimulatedRig,
    sessions: Path,
    fault: Fault,
    instant_s: float,
    seconds: float,
    stream: bool = True,
    outputs: bool = True,
) -> RunResult:
    """Record `seconds`, inject `fault` `instant_s` after T0, Stop, evaluate, heal."""
    result = RunResult(fault.key, round(instant_s, 3))
    collection = Collection(stream=stream, secret_file=rig.secret_file, settle_timeout_s=30.0)
    session = None
    try:
        with rig.link(
            heartbeat_interval_s=rig.heartbeat_interval_s, heartbeat_timeout_s=rig.heartbeat_timeout_s
        ) as link:
            request = RecordingRequest(FPS, None, subject=fault.key.split(":")[0])
            active = begin_recording(link, sessions, rig.camera_infos(), request, collection=collection)
            session = active.session_dir
            time.sleep(max(0.0, (active.t0_ns - time.time_ns()) / 1e9) + instant_s)
            _inject(rig, collection, session, fault)
            result.started = True
            time.sleep(max(0.0, seconds - instant_s))
            pressed = time.monotonic()
            finish_recording(link, active, stop_now=True, timeout=10.0, collection=collection)
            result.stop_s = round(time.monotonic() - pressed, 2)
        had = {c.name: _frames_had(rig, session, c.name) for c in active.cameras}
        evaluate(result, session, had, fault, outputs)
    except (RecordingError, OSError) as exc:
        result.problems.append(f"{type(exc).__name__}: {exc}")
        if session is not None:
            result.session = session.name
    finally:
        heal(rig, fault)
    return result


def _start_controller(config: Path, log: Path, seen: set[str]) -> tuple[subprocess.Popen, str]:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "controller", "--config", str(config), "--port", "0"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{REPO}:{REPO / 'pi-deploy'}"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for url in re.findall(r"SyncRig controller: (http://\S+)", log.read_text(errors="replace")):
            if url not in seen:
                seen.add(url)
                return proc, url
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"controller did not come up:\n{log.read_text()[-2000:]}")


def run_controller_fault(
    rig: SimulatedRig, workdir: Path, instant_s: float, seconds: float, outputs: bool = True
) -> RunResult:
    """SIGKILL the controller process mid-recording; a new one re-attaches; Stop from it."""
    from web_support import HttpSession, all_online

    fault = FAULTS["controller:KILL"]
    result = RunResult(fault.key, round(instant_s, 3))
    config = workdir / "rig.json"
    rig.write_rig_config(config, fps=FPS)
    seen: set[str] = set()
    first, url = _start_controller(config, workdir / "controller.log", seen)
    second = None
    try:
        web = HttpSession(url)
        web.wait_status(all_online)
        code, body = web.call("POST", "/api/recording/start", {"subject": "controller", "override": True})
        if code != 202:
            raise RuntimeError(f"start refused: {body}")
        status = web.wait_status(lambda s: s["recording"]["state"] == "recording")
        session_id = status["recording"]["session_id"]
        time.sleep(instant_s)
        first.kill()
        result.started = True
        first.wait(10)
        second, url2 = _start_controller(config, workdir / "controller.log", seen)
        web2 = HttpSession(url2)
        web2.wait_status(lambda s: s["recording"]["state"] == "recording")
        time.sleep(max(0.0, seconds - instant_s))
        session = Path(load_config(config).sessions_root) / session_id
        pressed = time.monotonic()
        code, body = web2.call("POST", "/api/recording/stop", {})
        if code != 202:
            raise RuntimeError(f"stop refused: {body}")
        manifest = SessionLayout(session).manifest
        while not manifest.exists() and time.monotonic() - pressed < 90:
            time.sleep(0.05)
        result.stop_s = round(time.monotonic() - pressed, 2)
        web2.wait_status(lambda s: s["recording"]["state"] == "idle", timeout=30)
        had = {c: _frames_had(rig, session, c) for c in rig.camera_names}
        evaluate(result, session, had, fault, outputs)
    except (RuntimeError, TimeoutError, OSError) as exc:
        result.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    return result
