"""The `.pts` sidecar is what docs/ARCHITECTURE.md promises: readable by mkvmerge as a v2 timestamp
file, so a recorded `.h264` + `.pts` becomes a variable-frame-rate MKV whose frame times are the
recorded capture times (relative to the shared T0)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from test_capture import make_session

from syncrig_agent.contract.formats import read_frame_table, read_pts


@pytest.fixture(scope="module")
def mkvmerge() -> str:
    exe = shutil.which("mkvmerge")
    if exe is None:
        pytest.skip(
            "mkvmerge NOT RUN: Debian package mkvtoolnix missing (tools/run-tests installs it as root)"
        )
    return exe


def test_mkvmerge_reads_the_pts_and_keeps_every_frame_time(tmp_path: Path, mkvmerge: str) -> None:
    session = make_session(tmp_path, frames=30)
    assert session.wait(10)
    raw = tmp_path / "s1" / "raw"
    out = tmp_path / "cam0.mkv"
    subprocess.run(
        [mkvmerge, "-q", "-o", str(out), "--timestamps", f"0:{raw / 'cam0.pts'}", str(raw / "cam0.h264")],
        check=True,
        capture_output=True,
        text=True,
    )
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        times_ms = sorted(
            float(p.pts * stream.time_base) * 1000 for p in container.demux(stream) if p.pts is not None
        )
    recorded = read_pts(raw / "cam0.pts").times_ns / 1e6
    assert len(times_ms) == len(recorded) == read_frame_table(raw / "cam0.frames.csv")["frame"].size
    # Matroska stores milliseconds by default: each frame within 1 ms of its recorded time.
    assert np.abs(np.asarray(times_ms) - (recorded - recorded[0])).max() <= 1.0
