"""H.265 archive: a real FFmpeg encode whose every frame time equals the camera's .pts (dropped
frames stay gaps), with progress; never overwrites an archive."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from controller.pipeline.transcode import TranscodeError, listed_hevc_encoders, transcode_session
from controller.rig.recording import RecordingRequest, record
from controller.rig.simulated import SimCamera
from controller.transfer import Collection
from syncrig_agent.contract.formats import read_pts


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    from conftest import TEST_HEIGHT, TEST_WIDTH

    from controller.rig.simulated import SimulatedRig

    tmp = tmp_path_factory.mktemp("transcode")
    cams = [SimCamera("cam0", drop_probability=0.1), SimCamera("cam1")]
    rig = SimulatedRig(tmp / "rig", cams, width=TEST_WIDTH, height=TEST_HEIGHT, bitrate=1_000_000)
    with rig, rig.link() as link:
        return record(
            link,
            tmp / "sessions",
            rig.camera_infos(),
            RecordingRequest(fps=30.0, seconds=2.0),
            collection=Collection(stream=False),
        )


def test_archive_keeps_every_frame_time(session: Path) -> None:
    progress: list[float] = []
    result = transcode_session(session, progress=lambda f, _m: progress.append(f))
    assert result["encoder"] in listed_hevc_encoders(__import__("controller.media").media.ffmpeg_exe())
    assert progress == sorted(progress) and progress[-1] == 1.0
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["cameras"][0]["dropped"] > 0  # the archive must keep the gaps, not close them
    for cam in ("cam0", "cam1"):
        info = result["cameras"][cam]
        archive = session / info["output"]
        pts = read_pts(session / "raw" / f"{cam}.pts").times_ns
        with av.open(str(archive)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "hevc"
            times = sorted(int(f.pts * stream.time_base * 1_000_000) for f in container.decode(stream))
        assert len(times) == len(pts) == info["frames"]
        assert times == [round(ns / 1000) - info["pts_shift_us"] for ns in pts.tolist()]
        assert (session / info["pts"]).read_bytes() == (session / "raw" / f"{cam}.pts").read_bytes()
    with pytest.raises(TranscodeError, match="never overwritten"):
        transcode_session(session, cameras=["cam0"])


def test_unknown_encoder_and_camera_are_refused(session: Path) -> None:
    with pytest.raises(TranscodeError, match="no encoder"):
        transcode_session(session, encoder="hevc_imaginary")
    with pytest.raises(TranscodeError, match="cam7"):
        transcode_session(session, cameras=["cam7"])


def test_listed_hardware_encoders_are_used_only_if_they_open() -> None:
    """FFmpeg builds list NVENC/VAAPI everywhere; auto must skip the ones this machine cannot run."""
    from controller.media import ffmpeg_exe
    from controller.pipeline.transcode import choose_encoder, encoder_works

    ffmpeg = ffmpeg_exe()
    listed = listed_hevc_encoders(ffmpeg)
    assert "libx265" in listed
    working = [e for e in listed if encoder_works(ffmpeg, e)]
    assert choose_encoder(ffmpeg, "auto") == working[0]
    for encoder in set(listed) - set(working):
        with pytest.raises(TranscodeError, match="does not open"):
            choose_encoder(ffmpeg, encoder)


@pytest.mark.parametrize("offset_ns", [33_333_333, -4_321])
def test_first_frame_not_at_t0_keeps_exact_times(session: Path, tmp_path: Path, offset_ns: int) -> None:
    """Slot 0 dropped (first frame a period after T0) or stamped a few µs before T0: MP4 tracks
    start at 0, so the archive records the shift and every time still matches exactly."""
    from syncrig_agent.contract.formats import write_pts

    copy = tmp_path / session.name
    (copy / "raw").mkdir(parents=True)
    (copy / "raw" / "cam1.h264").write_bytes((session / "raw" / "cam1.h264").read_bytes())
    shifted = read_pts(session / "raw" / "cam1.pts").times_ns + offset_ns
    write_pts(copy / "raw" / "cam1.pts", shifted)
    info = transcode_session(copy)["cameras"]["cam1"]
    with av.open(str(copy / info["output"])) as container:
        stream = container.streams.video[0]
        times = sorted(int(f.pts * stream.time_base * 1_000_000) for f in container.decode(stream))
    assert info["pts_shift_us"] == round(shifted[0] / 1000)
    assert [t + info["pts_shift_us"] for t in times] == [round(ns / 1000) for ns in shifted.tolist()]
