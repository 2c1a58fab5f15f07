"""The controller's receivers for one session: one side-car process (+ its FFmpeg) per camera.

    manager = ReceiverManager(session_dir, ["cam0", "cam1"], secret_file)
    streams = manager.start()          # {"cam0": "127.0.0.1:40123", ...} -> START's "streams"
    manager.status()                   # per camera: frames received, segments, restarts, complete
    manager.wait_complete(timeout)     # every camera's END seen (from the files)
    manager.stop()                     # SIGINT the rest (FFmpeg finalises), final status

A receiver process that dies is started again on the same port (the agent reconnects and resumes
at its next keyframe); it appends to the same files, so earlier segments are kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from controller.media import ffmpeg_exe
from syncrig_agent.contract.ids import validate_camera_name
from syncrig_agent.contract.layout import SessionLayout

log = logging.getLogger(__name__)

SUPERVISE_INTERVAL_S = 0.2


class ReceiverError(RuntimeError):
    pass


class _Receiver:
    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.process_restarts = 0
        self.exit_codes: list[int] = []


class ReceiverManager:
    def __init__(
        self,
        session_dir: Path | str,
        cameras: list[str],
        secret_file: Path | str,
        bind_host: str = "127.0.0.1",
        advertise_host: str | None = None,
        segment_seconds: float = 2.0,
        ffmpeg: str | None = None,
    ) -> None:
        self.session_dir = Path(session_dir)
        self.stream = SessionLayout(self.session_dir).stream
        self.stream_dir = self.stream.path
        self.cameras = [validate_camera_name(c) for c in cameras]
        self.secret_file = Path(secret_file)
        self.bind_host = bind_host
        self.advertise_host = advertise_host or bind_host
        self.segment_seconds = segment_seconds
        self.ffmpeg = ffmpeg or ffmpeg_exe()
        self.receivers = {c: _Receiver(c) for c in self.cameras}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> dict[str, str]:
        """Start every receiver; returns the stream destinations for START."""
        self.stream_dir.mkdir(parents=True, exist_ok=True)
        self.stream.run_dir.mkdir(exist_ok=True)
        try:
            for rec in self.receivers.values():
                self._spawn(rec)
            for rec in self.receivers.values():
                rec.port = self._wait_ready(rec, timeout)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        self._thread = threading.Thread(target=self._supervise, name="receiver-supervisor", daemon=True)
        self._thread.start()
        return self.destinations

    @property
    def destinations(self) -> dict[str, str]:
        return {c: f"{self.advertise_host}:{r.port}" for c, r in self.receivers.items()}

    def _ready_file(self, camera: str) -> Path:
        return self.stream.ready_file(camera)

    def _command(self, rec: _Receiver) -> list[str]:
        return [
            sys.executable,
            "-m",
            "controller",
            "receive",
            "--camera",
            rec.camera,
            "--listen",
            f"{self.bind_host}:{rec.port}",
            "--session-dir",
            str(self.session_dir),
            "--secret-file",
            str(self.secret_file),
            "--segment-seconds",
            f"{self.segment_seconds:g}",
            "--ffmpeg",
            self.ffmpeg,
            "--ready-file",
            str(self._ready_file(rec.camera)),
        ]

    def _spawn(self, rec: _Receiver) -> None:
        self._ready_file(rec.camera).unlink(missing_ok=True)
        logfh = open(self.stream.receiver_log(rec.camera), "ab")
        try:
            rec.proc = subprocess.Popen(
                self._command(rec), stdin=subprocess.DEVNULL, stdout=logfh, stderr=subprocess.STDOUT
            )
        finally:
            logfh.close()

    def _wait_ready(self, rec: _Receiver, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        ready = self._ready_file(rec.camera)
        while time.monotonic() < deadline:
            if ready.exists():
                try:
                    return int(json.loads(ready.read_text())["port"])
                except (ValueError, KeyError):
                    pass  # being written
            assert rec.proc is not None
            if rec.proc.poll() is not None:
                raise ReceiverError(
                    f"receiver {rec.camera} exited with {rec.proc.returncode}: {self._log_tail(rec)}"
                )
            time.sleep(0.05)
        raise ReceiverError(f"receiver {rec.camera} not ready after {timeout:g} s")

    def _log_tail(self, rec: _Receiver) -> str:
        path = self.stream.receiver_log(rec.camera)
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_INTERVAL_S):
            for rec in self.receivers.values():
                with self._lock:
                    if self._stopping.is_set() or rec.proc is None or rec.proc.poll() is None:
                        continue
                    rec.exit_codes.append(rec.proc.returncode)
                    if self.camera_complete(rec.camera):
                        continue  # finished normally after END
                    log.warning(
                        "receiver %s died (exit %s); restarting on port %d",
                        rec.camera,
                        rec.proc.returncode,
                        rec.port,
                    )
                    rec.process_restarts += 1
                    try:
                        self._spawn(rec)
                        self._wait_ready(rec, 10.0)
                    except (OSError, ReceiverError) as exc:
                        log.error("receiver %s could not be restarted: %s", rec.camera, exc)

    def camera_complete(self, camera: str) -> bool:
        return self.stream.files(camera)["end"].exists()

    def wait_complete(self, timeout: float, skip: set[str] | frozenset[str] = frozenset()) -> bool:
        """True once every camera's receiver (but those in `skip`: lost cameras, which send no
        END) has seen END (files closed, segments final)."""
        deadline = time.monotonic() + timeout
        waited = [c for c in self.cameras if c not in skip]
        while time.monotonic() < deadline:
            if all(self.camera_complete(c) for c in waited):
                # The process exits right after writing END's file; let it finish.
                for rec in (self.receivers[c] for c in waited):
                    if rec.proc is not None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            rec.proc.wait(max(0.1, deadline - time.monotonic()))
                return True
            time.sleep(0.1)
        return False

    def status(self) -> dict:
        """JSON-serialisable: per camera frames received, segments, restarts, completion."""
        cameras = {}
        for c, rec in self.receivers.items():
            files = self.stream.files(c)
            try:
                reported = json.loads(files["status"].read_text())
            except (OSError, ValueError):
                reported = {}
            running = rec.proc is not None and rec.proc.poll() is None
            cameras[c] = {
                "address": f"{self.advertise_host}:{rec.port}",
                "running": running,
                "complete": self.camera_complete(c),
                "frames_received": reported.get("frames", 0),
                "bytes_received": reported.get("bytes", 0),
                "segments": reported.get("segments", 0),
                "connections": reported.get("connections", 0),
                "ffmpeg_restarts": reported.get("ffmpeg_restarts", 0),
                "receiver_restarts": rec.process_restarts,
                "restarts": rec.process_restarts + reported.get("ffmpeg_restarts", 0),
                "last_frame_age_s": reported.get("last_frame_age_s"),
            }
        return {"session_dir": str(self.session_dir), "cameras": cameras}

    def pid(self, camera: str) -> int | None:
        proc = self.receivers[camera].proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def stop(self, timeout: float = 20.0) -> dict:
        """Stop every receiver still running (SIGINT: FFmpeg finalises its segment); final status."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
        with self._lock:
            procs = [r.proc for r in self.receivers.values() if r.proc is not None and r.proc.poll() is None]
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout
            for proc in procs:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("receiver pid %d ignored SIGINT; killing it", proc.pid)
                    proc.kill()
                    proc.wait()
        return self.status()

    def __enter__(self) -> ReceiverManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
