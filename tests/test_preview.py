"""The agents' live MJPEG preview, over real HTTP from real agent processes: snapshots and streams
from every camera, token authentication, hostile requests, and preview during a recording (which
must not cost the recording a frame) or across START."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import time

import av
import numpy as np
import pytest

from controller.rig.cluster_link import ClusterLink
from controller.rig.config import ConfigError, RigConfig, load_config
from syncrig_agent.backends.synthetic import SyntheticCamera
from syncrig_agent.contract.formats import read_frame_table
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.protocol import RequestError, load_secret
from syncrig_agent.main import add_agent_arguments, settings_from_args
from syncrig_agent.preview import (
    MAX_TOKEN_LIFETIME_S,
    PreviewService,
    PreviewTokenError,
    check_preview_token,
    make_preview_token,
    preview_query,
)
from syncrig_agent.settings import SettingsError
from syncrig_agent.sim.timecode import read_timecode
from syncrig_agent.timing.camera_clock import SimulatedClock

from session_checks import assert_slots_accounted, wait_for

FPS = 30.0
PERIOD = period_ns_for_fps(FPS)
SECRET = b"s" * 32


# -- helpers ---------------------------------------------------------------------------------
def http_get(port: int, target: str, method: str = "GET", timeout: float = 15.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class StreamReader:
    """Reads a /stream.mjpg response part by part, checking the multipart framing of each."""

    def __init__(self, port: int, query: str, timeout: float = 15.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request("GET", f"/stream.mjpg?{query}")
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"

    def next_part(self) -> bytes:
        line = self.resp.readline()
        while line in (b"\r\n", b"\n"):
            line = self.resp.readline()
        assert line == b"--frame\r\n", line
        headers = {}
        while (header := self.resp.readline()) not in (b"\r\n", b""):
            key, _, value = header.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        return self.resp.read(int(headers["content-length"]))

    def close(self) -> None:
        self.resp.close()  # the response holds the socket open past conn.close()
        self.conn.close()


def decode_jpeg(data: bytes) -> av.VideoFrame:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "not a complete JPEG"
    frames = av.CodecContext.create("mjpeg", "r").decode(av.Packet(data))
    assert len(frames) == 1
    return frames[0]


def jpeg_timecode(data: bytes) -> int | None:
    """The capture time the synthetic camera drew into the frame (full-size previews only)."""
    return read_timecode(decode_jpeg(data).to_ndarray(format="gray"))


def preview_status(link, camera: str) -> dict:
    status = link.status()
    if camera == status["server"]["name"]:
        return status["server"]["preview"]
    return (status["clients"][camera]["status"] or {}).get("preview") or {}


class BackgroundViewer:
    """A viewer that keeps reading one camera's stream, remembering each JPEG's timecode."""

    def __init__(self, port: int, query: str) -> None:
        self.reader = StreamReader(port, query)
        self.timecodes: list[int | None] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.timecodes.append(jpeg_timecode(self.reader.next_part()))
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def between(self, start_ns: int, end_ns: int) -> list[int]:
        return [t for t in self.timecodes if t is not None and start_ns <= t < end_ns]

    def close(self) -> None:
        self._stop.set()
        self.reader.close()
        self._thread.join(10)
        assert self.error is None, f"stream broke: {self.error!r}"


def check_every_frame(rig, session: str, frames: int, summaries: dict) -> None:
    for name in rig.camera_names:
        summary = summaries[name]["summary"]
        recorded = assert_slots_accounted(summary, frames)
        table = read_frame_table(rig.data_dir(name) / session / "raw" / f"{name}.frames.csv")
        assert len(table["frame"]) == recorded, (name, summary["stats"])
        assert set(table["grid_index"].tolist()) <= set(range(frames))


# -- tokens (no rig needed) -------------------------------------------------------------------
def test_token_checks() -> None:
    now = 1_800_000_000
    good = make_preview_token(SECRET, "cam1", now + 60)
    assert len(good) == 64 and int(good, 16) >= 0
    assert check_preview_token(SECRET, "cam1", str(now + 60), good, now=now) == now + 60
    assert check_preview_token(SECRET, "cam1", str(now + 60), good.upper(), now=now) == now + 60
    refused = {
        "missing": (None, good),
        "no token": (str(now + 60), None),
        "other camera": (str(now + 60), make_preview_token(SECRET, "cam2", now + 60)),
        "other secret": (str(now + 60), make_preview_token(b"x" * 32, "cam1", now + 60)),
        "other expiry": (str(now + 61), good),
        "expired": (str(now - 1), make_preview_token(SECRET, "cam1", now - 1)),
        "too far ahead": (
            str(now + MAX_TOKEN_LIFETIME_S + 10),
            make_preview_token(SECRET, "cam1", now + MAX_TOKEN_LIFETIME_S + 10),
        ),
        "not a number": ("-5", good),
        "not hex": (str(now + 60), "z" * 64),
        "short": (str(now + 60), good[:-2]),
    }
    for why, (expires, token) in refused.items():
        with pytest.raises(PreviewTokenError):
            check_preview_token(SECRET, "cam1", expires, token, now=now)
            pytest.fail(f"accepted a token that is {why}")
    with pytest.raises(ValueError, match="lifetime_s"):
        preview_query(SECRET, "cam1", lifetime_s=MAX_TOKEN_LIFETIME_S + 1)


def test_preview_settings() -> None:
    parser = argparse.ArgumentParser()
    add_agent_arguments(parser)
    base = ["--name", "cam3", "--role", "client", "--data-dir", "/tmp/x", "--secret-file", "/tmp/s"]
    settings = settings_from_args(parser.parse_args(base))
    assert (settings.preview, settings.preview_listen, settings.preview_fps) == (True, "0.0.0.0:5008", 10.0)
    settings = settings_from_args(
        parser.parse_args([*base, "--preview-listen", "127.0.0.1:0", "--preview-fps", "5"])
    )
    assert (settings.preview_listen, settings.preview_fps) == ("127.0.0.1:0", 5.0)
    assert settings_from_args(parser.parse_args([*base, "--no-preview"])).preview is False
    for flags, field in (
        (["--preview-fps", "0"], "preview_fps"),
        (["--preview-fps", "500"], "preview_fps"),
        (["--preview-listen", "127.0.0.1:99999"], "preview_listen"),
        (["--preview-listen", ":5008"], "preview_listen"),
    ):
        with pytest.raises(SettingsError, match=f"^{field}: "):
            settings_from_args(parser.parse_args([*base, *flags]))


# -- a real rig ---------------------------------------------------------------------------------
def test_snapshot_and_stream_from_every_camera(make_rig) -> None:
    rig = make_rig(3)
    assert set(rig.preview_ports) == set(rig.camera_names)
    assert len(set(rig.preview_ports.values())) == 3
    with rig.link() as link:
        status = link.status()
        assert status["server"]["preview"]["port"] == rig.preview_ports["cam0"]
        for name in rig.camera_names[1:]:
            wait_for(lambda n=name: preview_status(link, n).get("port"), 5, f"{name}'s status")
            assert preview_status(link, name)["port"] == rig.preview_ports[name]
            assert preview_status(link, name)["path"] == "/stream.mjpg"
    for name, port in rig.preview_ports.items():
        query = preview_query(rig.secret, name)
        code, headers, body = http_get(port, f"/snapshot.jpg?{query}")
        assert code == 200, body
        assert headers["content-type"] == "image/jpeg"
        frame = decode_jpeg(body)
        assert (frame.width, frame.height) == (rig.width, rig.height)  # 320 px: no downscale
        # The picture is live: the capture time drawn into it is a moment ago.
        stamp = jpeg_timecode(body)
        assert stamp is not None and abs(stamp - time.time_ns()) < 5e9
        reader = StreamReader(port, query)
        try:
            stamps = [jpeg_timecode(reader.next_part()) for _ in range(4)]
        finally:
            reader.close()
        assert None not in stamps and stamps == sorted(stamps) and len(set(stamps)) == 4
        # At most the preview rate (10 fps): parts are at least ~one preview period apart.
        assert (stamps[-1] - stamps[0]) / 3 >= 0.08e9
    with rig.link() as link:
        # Nobody watches any more: after the grace period the idle preview lets go of the camera.
        wait_for(
            lambda: all(
                preview_status(link, n).get("viewers") == 0 and preview_status(link, n).get("source") is None
                for n in rig.camera_names
            ),
            15,
            "the idle previews to stop",
        )


def test_rig_config_drives_the_simulated_rig(make_rig, tmp_path) -> None:
    rig = make_rig(2)
    config = rig.write_rig_config(tmp_path / "rig.json", fps=25.0)
    loaded = load_config(tmp_path / "rig.json")
    assert loaded == config
    assert [(c.name, c.host, c.role) for c in loaded.cameras] == [
        ("cam0", "127.0.0.1", "server"),
        ("cam1", "127.0.0.1", "client"),
    ]
    assert {c.name: c.preview_port for c in loaded.cameras} == rig.preview_ports
    assert {c.name: c.local_data_dir for c in loaded.cameras} == {
        n: str(rig.data_dir(n).resolve()) for n in rig.camera_names
    }
    assert (loaded.control_port, loaded.fps) == (rig.control_port, 25.0)
    secret = load_secret(loaded.secret_file)
    with ClusterLink((loaded.server.host, loaded.control_port), secret) as link:
        assert set(link.status()["clients"]) == {"cam1"}
    cam1 = loaded.cameras[1]
    query = preview_query(secret, cam1.name)
    assert http_get(cam1.preview_port, f"/snapshot.jpg?{query}")[0] == 200
    # The new fields are validated like the others, naming the field.
    data = loaded.to_dict()
    for key, bad in (("preview_port", 0), ("preview_port", True), ("local_data_dir", "relative/dir")):
        broken = {**data, "cameras": [dict(data["cameras"][0], **{key: bad}), data["cameras"][1]]}
        with pytest.raises(ConfigError, match=rf"^cameras\[0\]\.{key}: "):
            RigConfig.from_dict(broken)


def test_no_preview(make_rig) -> None:
    rig = make_rig(2, extra_args=["--no-preview"])
    assert rig.preview_ports == {}
    for name in rig.camera_names:
        assert json.loads((rig.workdir / "run" / f"{name}.ready.json").read_text())["preview_port"] is None
    with rig.link() as link:
        for name in rig.camera_names:
            status = wait_for(lambda n=name: preview_status(link, n), 5, f"{name}'s status")
            assert status["available"] is False and status["port"] is None and "disabled" in status["reason"]


def test_large_frames_are_downscaled(make_rig) -> None:
    rig = make_rig(1, width=1280, height=720)
    port = rig.preview_ports["cam0"]
    code, _, body = http_get(port, f"/snapshot.jpg?{preview_query(rig.secret, 'cam0')}")
    assert code == 200, body
    frame = decode_jpeg(body)
    assert (frame.width, frame.height) == (640, 360)
    luma = frame.to_ndarray(format="gray").astype(np.float64)
    assert luma.std() > 10, "the preview is a flat picture, not the scene"


def test_authentication_and_paths(make_rig) -> None:
    rig = make_rig(2)
    port = rig.preview_ports["cam1"]
    now = int(time.time())
    other = preview_query(rig.secret, "cam0")  # cam0's token does not open cam1
    expired = f"expires={now - 5}&token={make_preview_token(rig.secret, 'cam1', now - 5)}"
    far = now + MAX_TOKEN_LIFETIME_S + 3600
    too_far = f"expires={far}&token={make_preview_token(rig.secret, 'cam1', far)}"
    good = preview_query(rig.secret, "cam1")
    for path in ("/stream.mjpg", "/snapshot.jpg"):
        for query in (
            "",
            "?expires=1&token=",
            f"?{other}",
            f"?{expired}",
            f"?{too_far}",
            f"?{good}&token=00",
        ):
            code, _, body = http_get(port, path + query)
            assert code == 403, (path, query, code, body)
            assert body.startswith(b"forbidden: ")
    for target in ("/", "/stream.mjpg/x", "/../stream.mjpg", f"/snapshot.png?{good}", "/status"):
        code, _, _ = http_get(port, target)
        assert code == 404, target
    code, headers, _ = http_get(port, f"/snapshot.jpg?{good}", method="POST")
    assert code == 405 and headers["allow"] == "GET"
    assert http_get(port, f"/snapshot.jpg?{good}")[0] == 200


def raw_exchange(port: int, payload: bytes, timeout: float = 15.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_http_does_not_kill_the_server(make_rig) -> None:
    rig = make_rig(1)
    port = rig.preview_ports["cam0"]
    good = preview_query(rig.secret, "cam0")
    # A peer that connects and says nothing must not block anyone else.
    silent = socket.create_connection(("127.0.0.1", port))
    try:
        hostile = [
            b"\x00\xff\xfe garbage \r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /snapshot.jpg HTTP/9.9\r\n\r\n",
            b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
            b"GET /snapshot.jpg?" + b"&".join(b"k%d=v" % i for i in range(50)) + b" HTTP/1.0\r\n\r\n",
            b"GET /snapshot.jpg?expires=%ff%fe&token=%00 HTTP/1.0\r\n\r\n",
            b"GET /snapshot.jpg?expires=99999999999999999999999&token=" + b"a" * 64 + b" HTTP/1.0\r\n\r\n",
            b"GET /stream.mjpg HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
            b"GET /stream.mjpg HTTP/1.1\r\nHost: x",  # cut short
            b"BREW /pot HTTP/1.0\r\n\r\n",
        ]
        for payload in hostile:
            answer = raw_exchange(port, payload)
            assert not answer.startswith(b"HTTP/1.0 200"), (payload[:60], answer[:100])
        # A viewer that vanishes mid-stream.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /stream.mjpg?{good} HTTP/1.0\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.0 200")
        code, _, body = http_get(port, f"/snapshot.jpg?{good}")
        assert code == 200 and decode_jpeg(body).width == rig.width
    finally:
        silent.close()
    assert rig.processes["cam0"].poll() is None
    with rig.link() as link:
        wait_for(lambda: preview_status(link, "cam0")["viewers"] == 0, 15, "viewers to be released")


def test_preview_while_recording_keeps_every_frame(make_rig) -> None:
    rig = make_rig(2)
    frames = 90
    with rig.link() as link:
        started = link.start("during", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=frames)
        t0, end = started["t0_ns"], started["stop_ns"]
        time.sleep(max(0.0, (t0 - time.time_ns()) / 1e9) + 0.3)
        viewers = {n: BackgroundViewer(p, preview_query(rig.secret, n)) for n, p in rig.preview_ports.items()}
        try:
            assert preview_status(link, "cam0")["source"] == "recording"
            code, _, body = http_get(
                rig.preview_ports["cam1"], f"/snapshot.jpg?{preview_query(rig.secret, 'cam1')}"
            )
            assert code == 200
            stamp = jpeg_timecode(body)
            assert stamp is not None and t0 <= stamp < end
            time.sleep(max(0.0, (end - time.time_ns()) / 1e9) + 0.5)
            stopped = link.stop()
        finally:
            for viewer in viewers.values():
                viewer.close()
    for name, viewer in viewers.items():
        # The viewers saw the recording itself, at about the preview rate.
        assert len(viewer.between(t0, end)) >= 5, (name, viewer.timecodes)
    check_every_frame(rig, "during", frames, stopped["cameras"])


def test_start_while_watching_the_idle_preview(make_rig) -> None:
    rig = make_rig(2)
    frames = 60
    viewers = {n: BackgroundViewer(p, preview_query(rig.secret, n)) for n, p in rig.preview_ports.items()}
    try:
        with rig.link() as link:
            for name in rig.camera_names:
                wait_for(
                    lambda n=name: preview_status(link, n).get("source") == "idle", 10, f"{name} idle preview"
                )
            before = {n: len(v.timecodes) for n, v in viewers.items()}
            started = link.start("across", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=frames)
            t0, end = started["t0_ns"], started["stop_ns"]
            assert not started["late"], started
            time.sleep(max(0.0, (end - time.time_ns()) / 1e9) + 0.5)
            stopped = link.stop()
            # Once the recording is over the idle preview takes the camera again for the viewers.
            for name in rig.camera_names:
                wait_for(
                    lambda n=name: preview_status(link, n).get("source") == "idle", 10, f"{name} idle again"
                )
            after_end = time.time_ns()
            wait_for(
                lambda: all(v.between(after_end, 2**63) for v in viewers.values()), 10, "idle frames again"
            )
    finally:
        for viewer in viewers.values():
            viewer.close()
    for name, viewer in viewers.items():
        assert before[name] >= 1, f"{name}: no idle preview frames before START"
        assert len(viewer.between(t0, end)) >= 5, (name, viewer.timecodes)
    check_every_frame(rig, "across", frames, stopped["cameras"])


class _NoPreviewWhileRecording(SyntheticCamera):
    preview_while_recording = False


def test_viewer_refused_while_recording_where_hardware_cannot_do_both() -> None:
    backend = _NoPreviewWhileRecording(320, 240, SimulatedClock(), camera_name="camx")
    backend.open()
    recording = threading.Event()
    service = PreviewService("camx", backend, SECRET, "127.0.0.1:0", 10.0, recording.is_set)
    port = service.start()
    try:
        query = preview_query(SECRET, "camx")
        assert service.tap is None  # a recording would not feed the preview
        assert http_get(port, f"/snapshot.jpg?{query}")[0] == 200
        assert service.status()["available"] is True
        with service.camera_for_recording():  # what START does: the idle preview lets go first
            assert service.status()["source"] is None
            recording.set()
        code, _, body = http_get(port, f"/stream.mjpg?{query}")
        assert code == 409 and b"cannot preview while it records" in body
        status = service.status()
        assert status["available"] is False and "camx is recording" in status["reason"]
        recording.clear()
        assert http_get(port, f"/snapshot.jpg?{query}")[0] == 200
    finally:
        service.close()


def test_start_refused_if_preview_cannot_release_the_camera(monkeypatch) -> None:
    release = threading.Event()

    class _Stuck(SyntheticCamera):
        def run(self, grid, control, deliver, stats) -> None:
            release.wait(30)  # ignores abort, like a wedged driver

    monkeypatch.setattr("syncrig_agent.preview.service.IDLE_STOP_TIMEOUT_S", 0.5)
    monkeypatch.setattr("syncrig_agent.preview.server.SNAPSHOT_WAIT_S", 1.0)
    backend = _Stuck(320, 240, SimulatedClock(), camera_name="camy")
    service = PreviewService("camy", backend, SECRET, "127.0.0.1:0", 10.0, lambda: False)
    port = service.start()
    try:
        code, _, body = http_get(port, f"/snapshot.jpg?{preview_query(SECRET, 'camy')}")
        assert code == 503 and b"no frame from the camera" in body
        with pytest.raises(RequestError) as err, service.camera_for_recording():
            pass
        assert err.value.code == "busy" and "did not release the camera" in err.value.message
    finally:
        release.set()
        service.close()
