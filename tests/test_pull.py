"""Pull: resumable, SHA-256 verified (computed on the Pi side), gap fill from the stream copy, and
the rule that nothing on a Pi is deleted unless the verified desktop copy exists. Runs against a
local "Pi" directory and against a real OpenSSH server on loopback (SFTP + sha256sum over SSH)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from controller.receivers.sidecar import STREAM_TABLE_COLUMNS
from controller.transfer import (
    LocalTransport,
    PullError,
    SftpTransport,
    TransportError,
    delete_pi_copy,
    footage_safe,
    pull_session,
)
from controller.transfer.pull import download_file
from syncrig_agent.contract.formats import FRAME_TABLE_COLUMNS, PTS_HEADER, FrameRow, format_pts_line
from syncrig_agent.contract.formats.frame_table import write_frame_header, write_frame_row

SESSION = "20260101-120000-0001"
FRAMES = 200


def make_pi(root: Path, camera: str, seed: int = 1) -> dict[str, bytes]:
    """A camera's recording as its agent leaves it: frames of varying size, .pts, frame table."""
    rng = __import__("random").Random(seed)
    raw = root / SESSION / "raw"
    raw.mkdir(parents=True)
    frames = [rng.randbytes(rng.randint(2_000, 30_000)) for _ in range(FRAMES)]
    (raw / f"{camera}.h264").write_bytes(b"".join(frames))
    with open(raw / f"{camera}.frames.csv", "w", encoding="ascii") as fh:
        write_frame_header(fh)
        for i, data in enumerate(frames):
            t = i * 33_333_333
            write_frame_row(fh, FrameRow(i, i, t, t, t, int(i % 30 == 0), len(data), t))
    (raw / f"{camera}.pts").write_text(
        PTS_HEADER + "\n" + "".join(format_pts_line(i * 33_333_333) + "\n" for i in range(FRAMES))
    )
    (root / SESSION / f"{camera}.capture.json").write_text("{}\n")
    return {"frames": frames}


def desktop_session(tmp_path: Path) -> Path:
    d = tmp_path / "desktop" / SESSION
    (d / "raw").mkdir(parents=True)
    (d / "session.json").write_text(json.dumps({"cameras": [{"name": "cam0"}]}))
    return d


def pi_bytes(pi: Path, name: str) -> bytes:
    return (pi / SESSION / "raw" / name).read_bytes()


class CutTransport(LocalTransport):
    """A link that dies after `limit` bytes of the .h264 (like a network cut mid-download)."""

    def __init__(self, root: Path, limit: int) -> None:
        super().__init__(root)
        self.limit = limit

    def open(self, rel, offset=0, length=None):
        fh = super().open(rel, offset, length)
        if not rel.endswith(".h264"):
            return fh
        limit = self.limit

        class Reader:
            sent = 0

            def read(self, n):
                if self.sent >= limit:
                    raise ConnectionResetError("link lost")
                data = fh.read(min(n, limit - self.sent))
                self.sent += len(data)
                return data

            def close(self):
                fh.close()

        return Reader()


def test_interrupted_pull_resumes_and_verifies(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    make_pi(pi, "cam0")
    session = desktop_session(tmp_path)
    size = len(pi_bytes(pi, "cam0.h264"))
    cut = pull_session(session, {"cam0": lambda: CutTransport(pi, size // 2)}, use_stream=False)
    assert not cut["ok"] and "link lost" in cut["cameras"]["cam0"]["error"]
    part = session / "raw" / "cam0.h264.part"
    assert not (session / "raw" / "cam0.h264").exists()  # never a final name for an unverified file
    assert 0 < part.stat().st_size <= size // 2 + 1
    assert not footage_safe(session)["safe"]

    progress = []
    done = pull_session(
        session, {"cam0": lambda: LocalTransport(pi)}, progress=lambda f, m: progress.append(f)
    )
    assert done["ok"], done
    record = done["cameras"]["cam0"]["files"]["cam0.h264"]
    assert record["resumed_from"] == part_size_hint(record) > 0
    assert (session / "raw" / "cam0.h264").read_bytes() == pi_bytes(pi, "cam0.h264")
    assert not part.exists()
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert footage_safe(session)["safe"]


def part_size_hint(record: dict) -> int:
    return record["resumed_from"]


def test_corrupted_partial_download_is_detected_and_fetched_again(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    make_pi(pi, "cam0")
    session = desktop_session(tmp_path)
    remote = pi_bytes(pi, "cam0.h264")
    # A partial download whose bytes got damaged (bad RAM, a flaky disk, a truncated write).
    part = session / "raw" / "cam0.h264.part"
    damaged = bytearray(remote[: len(remote) // 3])
    damaged[1234] ^= 0xFF
    part.write_bytes(bytes(damaged))
    with LocalTransport(pi) as transport:
        info = download_file(
            transport,
            f"{SESSION}/raw/cam0.h264",
            session / "raw" / "cam0.h264",
            len(remote),
            hashlib.sha256(remote).hexdigest(),
        )
    assert info["attempts"] == 2  # resumed, failed the checksum, fetched again from zero
    assert (session / "raw" / "cam0.h264").read_bytes() == remote


def test_existing_different_file_is_never_overwritten(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    make_pi(pi, "cam0")
    session = desktop_session(tmp_path)
    (session / "raw" / "cam0.pts").write_text("something else\n")
    result = pull_session(session, {"cam0": lambda: LocalTransport(pi)})
    assert not result["ok"] and "refusing to overwrite" in result["cameras"]["cam0"]["error"]
    assert (session / "raw" / "cam0.pts").read_text() == "something else\n"


def write_stream_copy(session: Path, frames: list[bytes], have: set[int], damage: int | None = None) -> None:
    stream = session / "stream"
    stream.mkdir()
    offset = 0
    with open(stream / "cam0.h264", "wb") as spool, open(stream / "cam0.frames.csv", "w") as table:
        table.write(",".join(STREAM_TABLE_COLUMNS) + "\n")
        for i in sorted(have):
            data = bytearray(frames[i])
            if i == damage:
                data[0] ^= 0x55
            spool.write(data)
            row = [i, i, 0, 0, 0, int(i % 30 == 0), len(data), 0]
            assert len(row) == len(FRAME_TABLE_COLUMNS)
            table.write(",".join(map(str, [*row, offset, 0, 1])) + "\n")
            offset += len(data)


def test_gap_fill_takes_only_missing_frames_from_the_pi(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    frames = make_pi(pi, "cam0")["frames"]
    session = desktop_session(tmp_path)
    missing = set(range(40, 75)) | {3, 199}
    write_stream_copy(session, frames, set(range(FRAMES)) - missing)
    result = pull_session(session, {"cam0": lambda: LocalTransport(pi)})
    record = result["cameras"]["cam0"]["files"]["cam0.h264"]
    assert record["source"] == "stream+pi"
    fill = record["gap_fill"]
    assert fill["frames_from_pi"] == len(missing) and fill["ranges_from_pi"] == 3
    assert fill["bytes_from_pi"] == sum(len(frames[i]) for i in missing)
    assert (session / "raw" / "cam0.h264").read_bytes() == pi_bytes(pi, "cam0.h264")


def test_damaged_stream_copy_never_reaches_raw(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    frames = make_pi(pi, "cam0")["frames"]
    session = desktop_session(tmp_path)
    write_stream_copy(session, frames, set(range(FRAMES)), damage=17)
    result = pull_session(session, {"cam0": lambda: LocalTransport(pi)})
    record = result["cameras"]["cam0"]["files"]["cam0.h264"]
    assert record["source"] == "pi"  # the assembled copy failed the Pi's SHA-256: downloaded instead
    assert (session / "raw" / "cam0.h264").read_bytes() == pi_bytes(pi, "cam0.h264")


def test_pi_copy_is_deleted_only_with_confirmation_and_a_verified_copy(tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    make_pi(pi, "cam0")
    session = desktop_session(tmp_path)
    pi_files = sorted(p.name for p in (pi / SESSION / "raw").iterdir())
    with LocalTransport(pi) as transport:
        with pytest.raises(PullError, match="not verified"):
            delete_pi_copy(session, "cam0", transport, confirm=True)  # nothing pulled yet
        assert pull_session(session, {"cam0": lambda: LocalTransport(pi)})["ok"]
        with pytest.raises(PullError, match="confirmation"):
            delete_pi_copy(session, "cam0", transport)
        # The desktop copy changed after verification (bit rot, an accidental edit): refused.
        h264 = session / "raw" / "cam0.h264"
        good = h264.read_bytes()
        h264.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        with pytest.raises(PullError, match="SHA-256"):
            delete_pi_copy(session, "cam0", transport, confirm=True)
        assert footage_safe(session)["cameras"]["cam0"]["problems"]
        h264.write_bytes(good)
        # The Pi's file is not the one verified (recorded again?): refused as well.
        pi_pts = pi / SESSION / "raw" / "cam0.pts"
        original = pi_pts.read_bytes()
        pi_pts.write_bytes(original + b"1.0\n")
        with pytest.raises(PullError, match="not the verified file"):
            delete_pi_copy(session, "cam0", transport, confirm=True)
        pi_pts.write_bytes(original)
        assert sorted(p.name for p in (pi / SESSION / "raw").iterdir()) == pi_files  # all still there
        done = delete_pi_copy(session, "cam0", transport, confirm=True)
    assert len(done["deleted"]) == 4 and not (pi / SESSION).exists()
    assert json.loads((session / "transfer.json").read_text())["cameras"]["cam0"]["deleted_from_pi"]
    assert footage_safe(session)["safe"]


def sftp(sshd: dict, root: Path) -> SftpTransport:
    return SftpTransport(
        "127.0.0.1",
        str(root),
        getpass.getuser(),
        port=sshd["port"],
        key_filename=sshd["key"],
        known_hosts=sshd["known_hosts"],
    )


def test_sftp_pull_interrupted_resumes_and_verifies_with_pi_side_sha(sshd, tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    make_pi(pi, "cam0")
    session = desktop_session(tmp_path)
    remote = pi_bytes(pi, "cam0.h264")

    class CutSftp(SftpTransport):
        """Drops the real SSH connection half-way through the video."""

        def open(self, rel, offset=0, length=None):
            fh = super().open(rel, offset, length)
            if not rel.endswith(".h264"):
                return fh
            owner = self

            class Reader:
                got = 0

                def read(self, n):
                    if self.got > len(remote) // 2:
                        owner.client.close()  # the TCP connection really goes away
                        # (prefetched bytes could still be served from paramiko's buffer; a real
                        # cut loses them, so stop here as the reader would once they ran out)
                        raise TransportError("connection lost")
                    data = fh.read(n)
                    self.got += len(data)
                    return data

                def close(self):
                    pass

            return Reader()

    def cut():
        s = sftp(sshd, pi)
        s.__class__ = CutSftp
        return s

    first = pull_session(session, {"cam0": cut}, use_stream=False)
    assert not first["ok"]
    assert (session / "raw" / "cam0.h264.part").stat().st_size > 0
    # The checksum comes from the Pi (sha256sum over SSH), not from reading the file back.
    with sftp(sshd, pi) as transport:
        assert transport.sha256(f"{SESSION}/raw/cam0.h264") == hashlib.sha256(remote).hexdigest()
    second = pull_session(session, {"cam0": lambda: sftp(sshd, pi)}, use_stream=False)
    assert second["ok"], second
    assert second["cameras"]["cam0"]["files"]["cam0.h264"]["resumed_from"] > 0
    for name in ("cam0.h264", "cam0.pts", "cam0.frames.csv"):
        assert (session / "raw" / name).read_bytes() == pi_bytes(pi, name)
    with sftp(sshd, pi) as transport:
        delete_pi_copy(session, "cam0", transport, confirm=True)
    assert not (pi / SESSION).exists()


def test_sftp_checks_host_keys_as_deploy_does(sshd, tmp_path: Path) -> None:
    """Pull opens SSH through deploy's opener: an unknown host is refused with its fingerprint, a
    remembered key that differs is refused as changed, and neither is added to known_hosts."""

    def open_with(known_hosts: Path) -> SftpTransport:
        return sftp({**sshd, "known_hosts": str(known_hosts)}, tmp_path)

    unknown = tmp_path / "known_hosts.empty"
    unknown.write_text("")
    with pytest.raises(TransportError, match=r"not in .*SHA256:"):
        open_with(unknown)
    assert unknown.read_text() == ""
    other = tmp_path / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = Path(f"{other}.pub").read_text().split()
    changed = tmp_path / "known_hosts.changed"
    changed.write_text(f"[127.0.0.1]:{sshd['port']} {pub[0]} {pub[1]}\n")
    with pytest.raises(TransportError, match="HOST KEY CHANGED"):
        open_with(changed)
    assert changed.read_text().count("\n") == 1


def test_pull_refuses_path_tricks(tmp_path: Path) -> None:
    bad = tmp_path / ".."
    with pytest.raises(ValueError):
        pull_session(bad, {})
    session = desktop_session(tmp_path)
    with pytest.raises(ValueError):
        pull_session(session, {"../cam0": lambda: LocalTransport(tmp_path)})
    with LocalTransport(tmp_path) as t, pytest.raises(ValueError):
        t.size("../etc/passwd")
    assert os.path.exists(session)


def test_gap_fill_over_sftp_reads_only_the_missing_ranges(sshd, tmp_path: Path) -> None:
    pi = tmp_path / "pi"
    frames = make_pi(pi, "cam0")["frames"]
    session = desktop_session(tmp_path)
    missing = set(range(10, 20)) | set(range(100, 101)) | set(range(150, 190))
    write_stream_copy(session, frames, set(range(FRAMES)) - missing)
    result = pull_session(session, {"cam0": lambda: sftp(sshd, pi)})
    record = result["cameras"]["cam0"]["files"]["cam0.h264"]
    assert record["source"] == "stream+pi" and record["gap_fill"]["ranges_from_pi"] == 3
    assert record["gap_fill"]["bytes_from_pi"] == sum(len(frames[i]) for i in missing)
    assert (session / "raw" / "cam0.h264").read_bytes() == pi_bytes(pi, "cam0.h264")
