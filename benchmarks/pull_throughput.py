"""Pull throughput over SSH on loopback: SyncRig's pull (SFTP via paramiko, SHA-256 on the "Pi"
side and while writing, fsync, link into place) against plain `scp` and `sftp` of the same files
in the same run. The "Pi" is a real sshd on 127.0.0.1 (tests/loopback_sshd.py); needs root.

    .venv/bin/python benchmarks/pull_throughput.py                        # 8 cams x 187 MB
    .venv/bin/python benchmarks/pull_throughput.py --mb-per-camera 32     # quick look

187 MB = 60 s at 25 Mbit/s: one camera's recording of the stream benchmark.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from controller.receivers import STREAM_TABLE_COLUMNS  # noqa: E402
from controller.transfer import SftpTransport, pull_session  # noqa: E402
from syncrig_agent.contract.formats import PTS_HEADER, FrameRow, format_pts_line  # noqa: E402
from syncrig_agent.contract.formats.frame_table import write_frame_header, write_frame_row  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402

from loopback_sshd import SshdUnavailable, loopback_sshd  # noqa: E402

SESSION = "20260101-000000-0001"


def make_pi(root: Path, camera: str, size: int, frame_bytes: int = 55_000) -> None:
    raw = SessionLayout(root / SESSION).raw
    raw.path.mkdir(parents=True, exist_ok=True)
    frames = size // frame_bytes
    with open(raw.video(camera), "wb") as fh:
        block = os.urandom(frame_bytes)
        for _ in range(frames):
            fh.write(block)
    with open(raw.frames(camera), "w", encoding="ascii") as fh:
        write_frame_header(fh)
        for i in range(frames):
            write_frame_row(fh, FrameRow(i, i, i, i, i, int(i % 56 == 0), frame_bytes, i))
    with open(raw.pts(camera), "w", encoding="ascii") as fh:
        fh.write(PTS_HEADER + "\n")
        fh.writelines(format_pts_line(i * 17_857_143) + "\n" for i in range(frames))


def make_stream_copy(pi: Path, session: Path, camera: str, frame_bytes: int = 55_000) -> int:
    """What a live receiver would hold: every frame except 10 in every 100 (a receiver restart
    every 2 s, far worse than normal). Returns the number of frames missing."""
    src = SessionLayout(pi / SESSION).raw.video(camera)
    frames = src.stat().st_size // frame_bytes
    stream = SessionLayout(session).stream
    stream.path.mkdir(parents=True, exist_ok=True)
    missing = 0
    with (
        open(src, "rb") as fh,
        open(stream.files(camera)["h264"], "wb") as spool,
        open(stream.files(camera)["frames"], "w", encoding="ascii") as table,
    ):
        table.write(",".join(STREAM_TABLE_COLUMNS) + "\n")
        offset = 0
        for i in range(frames):
            data = fh.read(frame_bytes)
            if i % 100 >= 90:
                missing += 1
                continue
            spool.write(data)
            table.write(
                ",".join(map(str, [i, i, i, i, i, int(i % 56 == 0), frame_bytes, i, offset, 0, 1])) + "\n"
            )
            offset += frame_bytes
    return missing


def ssh_options(sshd: dict) -> list[str]:
    return [
        "-P", str(sshd["port"]), "-i", sshd["key"], "-o", f"UserKnownHostsFile={sshd['known_hosts']}",
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
    ]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--mb-per-camera", type=float, default=187.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cams = [f"cam{i}" for i in range(args.cameras)]
    user = getpass.getuser()
    with tempfile.TemporaryDirectory(prefix="syncrig-bench-pull-") as tmp:
        tmp = Path(tmp)
        pi = tmp / "pi"
        for cam in cams:
            make_pi(pi, cam, int(args.mb_per_camera * 1e6))
        files = sorted(SessionLayout(pi / SESSION).raw.path.iterdir())
        total = sum(f.stat().st_size for f in files)
        print(f"{len(files)} files, {total / 1e6:.0f} MB ({args.cameras} cameras)")
        try:
            sshd_cm = loopback_sshd(tmp / "sshd")
            sshd = sshd_cm.__enter__()
        except SshdUnavailable as exc:
            print(f"pull benchmark NOT RUN: {exc}")
            return 2
        try:
            results: dict[str, float] = {}

            def timed(label: str, fn, prepare=None) -> None:
                dest = tmp / "desktop" / label
                dest.mkdir(parents=True)
                if prepare is not None:
                    prepare(dest)  # not timed: the live receivers wrote this during the recording
                started = time.monotonic()
                fn(dest)
                elapsed = time.monotonic() - started
                got = sum(
                    f.stat().st_size
                    for f in dest.rglob("*")
                    if f.is_file()
                    and f.suffix != ".json"
                    and SessionLayout(dest / SESSION).stream.path not in f.parents
                )
                assert got >= total, f"{label}: copied {got} of {total} bytes"
                results[label] = total / elapsed / 1e6
                print(f"  {label:34s} {elapsed:6.2f} s  {results[label]:7.1f} MB/s")
                shutil.rmtree(dest)

            def scp(dest: Path) -> None:
                sources = [f"{user}@127.0.0.1:{f}" for f in files]
                subprocess.run(["scp", "-q", *ssh_options(sshd), *sources, str(dest)], check=True)

            def sftp(dest: Path) -> None:
                batch = tmp / "batch"
                batch.write_text("".join(f'get "{f}" "{dest / f.name}"\n' for f in files))
                subprocess.run(
                    ["sftp", "-q", "-b", str(batch), *ssh_options(sshd), f"{user}@127.0.0.1"],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

            def syncrig(workers: int, stream: bool = False):
                def run(dest: Path) -> None:
                    session = dest / SESSION
                    sources = {
                        c: (
                            lambda: SftpTransport(
                                "127.0.0.1",
                                str(pi),
                                user,
                                port=sshd["port"],
                                key_filename=sshd["key"],
                                known_hosts=sshd["known_hosts"],
                            )
                        )
                        for c in cams
                    }
                    result = pull_session(session, sources, workers=workers, use_stream=stream)
                    assert result["ok"], result
                    if stream:
                        for r in result["cameras"].values():
                            assert (
                                r["files"][next(n for n in r["files"] if n.endswith(".h264"))]["source"]
                                == "stream+pi"
                            )

                return run

            print("loopback SSH, same files, same run:")
            timed("scp (one command, all files)", scp)
            timed("sftp -b (batch get)", sftp)

            def raw_dir(dest: Path) -> None:
                SessionLayout(dest / SESSION).raw.path.mkdir(parents=True)

            timed("syncrig pull, 1 worker, verified", syncrig(1), raw_dir)
            timed(f"syncrig pull, {args.workers} workers, verified", syncrig(args.workers), raw_dir)

            def stream_copies(dest: Path) -> None:
                raw_dir(dest)
                missing = sum(make_stream_copy(pi, dest / SESSION, c) for c in cams)
                print(f"    (live stream copies present, {missing} frames missing: gap fill)")

            timed("syncrig pull + gap fill, 10 % missing", syncrig(args.workers, stream=True), stream_copies)
            base = results["scp (one command, all files)"]
            for label, rate in results.items():
                print(f"  {label:34s} {rate / base:5.2f}x scp")
        finally:
            sshd_cm.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
