"""Live streaming end to end: real agent processes stream to real receiver processes (side-car +
FFmpeg) on loopback; receivers and FFmpeg are killed mid-recording; after the pull with gap fill
every camera's raw/ must be byte-identical to the agent's own files."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import av
import pytest

from controller.receivers import ReceiverManager, read_stream_table, stream_files
from controller.rig.recording import RecordingRequest, record
from controller.transfer import Collection, footage_safe
from controller.transfer.ledger import raw_names

from session_checks import assert_slots_accounted

FPS = 30.0


def assert_raw_identical(session_dir: Path, rig, camera: str) -> None:
    """Frame-exact: the desktop's raw files are the agent's local files, byte for byte."""
    pi_raw = rig.data_dir(camera) / session_dir.name / "raw"
    for name in raw_names(camera):
        desktop = (session_dir / "raw" / name).read_bytes()
        assert desktop == (pi_raw / name).read_bytes(), f"{name} differs from the agent's copy"


def segment_frames(path: Path) -> int:
    """Frames readable from a segment (the one FFmpeg was writing when killed may be cut short)."""
    frames = 0
    try:
        with av.open(str(path)) as c:
            for packet in c.demux(video=0):
                frames += bool(packet.size)
    except av.error.FFmpegError:
        pass
    return frames


def test_receivers_killed_mid_recording_then_gap_fill_makes_raw_complete(make_rig, tmp_path: Path) -> None:
    rig = make_rig(2)
    sessions = tmp_path / "sessions"
    seconds = 6.0
    collection = Collection(stream=True, secret_file=rig.secret_file, segment_seconds=1.0)
    killed: dict[str, object] = {}

    def sabotage(fraction: float, _info: dict) -> None:
        receivers = collection.receivers
        if receivers is None:
            return
        status = receivers.status()["cameras"]
        if "cam0" not in killed and fraction > 0.3 and status["cam0"]["frames_received"] > 20:
            # The whole receiver process of cam0 dies: the manager restarts it on the same port,
            # the agent's stream connection is cut and must reconnect by itself.
            killed["cam0"] = receivers.pid("cam0")
            os.kill(receivers.pid("cam0"), signal.SIGKILL)
        if "cam1" not in killed and fraction > 0.45 and status["cam1"]["segments"] >= 2:
            # Only cam1's FFmpeg dies: the side-car restarts it; earlier segments must survive.
            segs = sorted((receivers.stream_dir).glob("cam1_*.mkv"))
            killed["cam1_segments"] = {p.name: p.read_bytes() for p in segs[:-1]}
            ffmpeg_pid = json.loads(stream_files(receivers.stream_dir, "cam1")["status"].read_text())[
                "ffmpeg_pid"
            ]
            killed["cam1"] = ffmpeg_pid
            os.kill(ffmpeg_pid, signal.SIGKILL)

    with rig.link() as link:
        session_dir = record(
            link,
            sessions,
            rig.camera_infos(),
            RecordingRequest(fps=FPS, seconds=seconds),
            progress=sabotage,
            collection=collection,
        )
    assert "cam0" in killed and "cam1" in killed, f"sabotage did not happen: {killed}"
    manifest = json.loads((session_dir / "session.json").read_text())
    expected = round(seconds * FPS)
    for cam in manifest["cameras"]:
        # The agents kept recording through all of it: the local copies have every frame.
        assert cam["frames"] + cam["drops"]["late_skips"] == expected and cam["error"] is None, cam
        assert cam["drops"]["late_skips"] <= 2 and cam["drops"]["sensor"] == 0, cam

    transfer = json.loads((session_dir / "transfer.json").read_text())
    stream_dir = session_dir / "stream"
    for camera in ("cam0", "cam1"):
        assert_raw_identical(session_dir, rig, camera)
    # cam0's stream lost the frames in flight when its receiver died, up to the agent's next
    # keyframe: the gap fill took exactly those from the Pi and the rest from the stream.
    h264 = transfer["cameras"]["cam0"]["files"]["cam0.h264"]
    assert h264["verified"] and h264["source"] == "stream+pi", h264
    streamed = {r.row.frame for r in read_stream_table(stream_files(stream_dir, "cam0")["frames"])}
    assert h264["gap_fill"]["frames_from_pi"] == expected - len(streamed) > 0
    assert h264["gap_fill"]["frames_from_stream"] == len(streamed)
    # cam1: only FFmpeg died; the side-car kept every packet, so nothing was needed from the Pi.
    h264 = transfer["cameras"]["cam1"]["files"]["cam1.h264"]
    assert (
        h264["verified"] and h264["source"] == "stream" and h264["gap_fill"]["frames_from_stream"] == expected
    )
    assert footage_safe(session_dir)["safe"]

    # cam0's receiver process was restarted and the agent reconnected (a second connection).
    status0 = json.loads(stream_files(stream_dir, "cam0")["status"].read_text())
    assert status0["connections"] >= 2 and status0["complete"]
    capture0 = json.loads((rig.data_dir("cam0") / session_dir.name / "cam0.capture.json").read_text())
    (stream_report,) = capture0["outputs"]
    assert stream_report["kind"] == "stream" and stream_report["connections"] >= 2
    assert stream_report["end_sent"] and stream_report["not_sent"] > 0
    # cam1's FFmpeg was restarted; the segments finished before the kill are untouched, and the
    # new run continued with new numbers.
    status1 = json.loads(stream_files(stream_dir, "cam1")["status"].read_text())
    assert status1["ffmpeg_restarts"] >= 1
    for name, data in killed["cam1_segments"].items():
        assert (stream_dir / name).read_bytes() == data, f"{name} was changed by the restart"
    segments = sorted(stream_dir.glob("cam1_*.mkv"))
    assert len(segments) > len(killed["cam1_segments"]) + 1
    in_segments = sum(r.in_segment for r in read_stream_table(stream_files(stream_dir, "cam1")["frames"]))
    # Segments hold what FFmpeg got (minus what was in its pipe when it was killed); after the
    # restart it resumed at a keyframe, so at most about two GOPs (2 x 30 frames) are missing.
    assert expected - 2 * 30 - 2 <= sum(segment_frames(p) for p in segments) <= in_segments


def test_uninterrupted_stream_needs_nothing_from_the_pi(make_rig, tmp_path: Path) -> None:
    rig = make_rig(2)
    collection = Collection(stream=True, secret_file=rig.secret_file, segment_seconds=1.0)
    with rig.link() as link:
        session_dir = record(
            link,
            tmp_path / "s",
            rig.camera_infos(),
            RecordingRequest(fps=FPS, seconds=2.0),
            collection=collection,
        )
    transfer = json.loads((session_dir / "transfer.json").read_text())
    for camera in ("cam0", "cam1"):
        assert_raw_identical(session_dir, rig, camera)
        h264 = transfer["cameras"][camera]["files"][f"{camera}.h264"]
        assert h264["source"] == "stream" and h264["gap_fill"]["bytes_from_pi"] == 0
        assert (session_dir / "stream" / f"{camera}.end.json").exists()
        segments = sorted((session_dir / "stream").glob(f"{camera}_*.mkv"))
        assert sum(segment_frames(p) for p in segments) == round(2.0 * FPS)


def test_agent_keeps_recording_while_no_receiver_listens(make_rig, tmp_path: Path) -> None:
    """A stream destination nobody listens on: the recording is unaffected, the failures are
    counted, and START does not wait for the stream."""
    import socket

    rig = make_rig(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # closed again: connection refused
    with rig.link() as link:
        link.start(
            "nolisten",
            int(1e9 / FPS),
            FPS,
            {"cam0": "cam0"},
            frames=45,
            streams={"cam0": f"127.0.0.1:{dead_port}"},
        )
        time.sleep(45 / FPS + 0.5)
        stopped = link.stop()
    summary = stopped["cameras"]["cam0"]["summary"]
    frames = assert_slots_accounted(summary, 45)
    (report,) = summary["outputs"]
    assert report["sent"] == 0 and report["connect_failures"] >= 2 and report["not_sent"] == frames


def test_receiver_refuses_a_peer_without_the_secret(tmp_path: Path) -> None:
    from syncrig_agent.contract.protocol import AuthenticationFailed, connect_handshake, write_secret

    secret_file = tmp_path / "secret"
    write_secret(secret_file)
    session = tmp_path / "sess1"
    manager = ReceiverManager(session, ["cam0"], secret_file)
    streams = manager.start()
    try:
        host, port = streams["cam0"].rsplit(":", 1)
        import socket

        with socket.create_connection((host, int(port))) as sock, pytest.raises(AuthenticationFailed):
            connect_handshake(sock, b"not-the-secret-" * 3)
        time.sleep(0.3)
        assert manager.status()["cameras"]["cam0"]["connections"] == 0
        assert not stream_files(session / "stream", "cam0")["h264"].exists()
    finally:
        manager.stop()


def test_start_refuses_malformed_stream_destinations(make_rig) -> None:
    from syncrig_agent.contract.protocol import RemoteError

    rig = make_rig(1)
    with rig.link() as link:
        for bad in (
            {"cam0": "host;rm -rf /:1"},
            {"cam0": "127.0.0.1:0"},
            {"cam0": "127.0.0.1"},
            {"../x": "a:1"},
        ):
            with pytest.raises(RemoteError) as err:
                link.start("badstream", int(1e9 / FPS), FPS, {"cam0": "cam0"}, frames=5, streams=bad)
            assert err.value.code == "bad_field" and "streams" in str(err.value)
        with pytest.raises(RemoteError, match="not recording"):
            link.start("badstream", int(1e9 / FPS), FPS, {"cam0": "cam0"}, frames=5, streams={"cam9": "a:1"})
    assert not (rig.data_dir("cam0") / "badstream").exists()
