"""Synced + trim outputs vs a libx264 re-encode of the same frames (issue 5 measurement).

Builds a session like a Pi rig records it (3 cameras, 1536×864, 56 fps, 1 s GOP, libx264
ultrafast/zerolatency at 25 Mbit/s, synthetic scene with the capture time drawn in, 0.2 % random
drops), then times, in this process:
- SyncRig: `write_synced_outputs` (packet copy) + `trim_session` of the middle 80 % with a start on
  a non-keyframe (copy + one partial GOP re-encoded per camera);
- baseline: what SqueakShot does for the same two outputs, a libx264 re-encode (decode + encode,
  `--baseline-preset medium`, crf 18) of exactly the same frames;
and checks that every copied packet in the outputs is bit-identical to the recorded one.

    .venv/bin/python benchmarks/synced_outputs.py [--seconds 600 --width 1536 --height 864]

Generating the input costs about as much as the baseline; use e.g. --seconds 30 for a quick run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from controller.pipeline import load_session, trim_session, write_synced_outputs
from controller.pipeline.analyze import analyze_session, current_match
from controller.pipeline.outputs import read_map_csv
from controller.pipeline.packets import annexb_nal_units, iter_packets, length_prefixed_nal_units
from syncrig_agent.contract.formats import SessionManifest, write_manifest, write_pts
from syncrig_agent.contract.formats.frame_table import FrameRow, write_frame_header, write_frame_row
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.layout import OutputFolder, SessionLayout
from syncrig_agent.sim.scene import SyntheticScene


def make_session(root: Path, cameras: int, seconds: float, fps: float, width: int, height: int) -> Path:
    period = period_ns_for_fps(fps)
    slots = int(seconds * fps)
    t0 = time.time_ns()
    session = root / "bench-session"
    raw = SessionLayout(session).raw
    raw.path.mkdir(parents=True)
    rng = np.random.default_rng(3)
    entries = []
    for c in range(cameras):
        name = f"cam{c}"
        scene = SyntheticScene(width, height, name, seed=c)
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, int(fps))
        ctx.framerate = Fraction(int(fps))
        ctx.bit_rate = 25_000_000
        ctx.max_b_frames = 0
        gop = int(fps)
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
        }
        ctx.open()
        keep = rng.random(slots) > 0.002
        times, pending = [], {}
        with (
            open(raw.video(name), "wb") as video,
            open(raw.frames(name), "w") as table,
        ):
            write_frame_header(table)

            def write_packet(packet, pending=pending, times=times, video=video, table=table) -> None:  # noqa: ANN001
                # One recorded frame, written as an agent writes it.
                grid, w = pending.pop(int(packet.pts))
                data = bytes(packet)
                video.write(data)
                row = FrameRow(
                    len(times), grid, w, w, t0 + grid * period, int(packet.is_keyframe), len(data), w
                )
                write_frame_row(table, row)
                times.append(w - t0)

            for position, n in enumerate(np.flatnonzero(keep)):
                wall = t0 + int(n) * period + int(rng.normal(0, 20_000))
                frame = av.VideoFrame.from_ndarray(scene.render(wall, int(n)), format="yuv420p")
                frame.pts = position
                pending[position] = (int(n), wall)
                for packet in ctx.encode(frame):
                    write_packet(packet)
            for packet in ctx.encode(None):
                write_packet(packet)
        write_pts(raw.pts(name), times)
        entries.append(
            {"name": name, "host": "bench", "role": "server" if c == 0 else "client", "width": width,
             "height": height, "frames": len(times), "expected_frames": slots, "dropped": slots - len(times)}
        )  # fmt: skip
    write_manifest(
        session,
        SessionManifest(
            id="bench-session", subject=None, project=None, created="", fps=fps, period_ns=period, t0_ns=t0,
            cameras=entries,
        ),
    )  # fmt: skip
    return session


def reencode_baseline(session: Path, folder: OutputFolder, preset: str, out_dir: Path) -> int:
    """Decode the recording and libx264-encode exactly the frames an output folder holds."""
    source = load_session(session)
    frames = 0
    for track in source.tracks:
        wanted = read_map_csv(folder.map(track.name))["source_frame"]
        wanted_set = set(wanted.tolist())
        last = int(wanted.max())
        with (
            av.open(str(track.video), format="h264") as src,
            av.open(str(out_dir / f"{folder.path.name}-{track.name}.mp4"), "w") as out,
        ):
            rate = Fraction(int(round(source.manifest.fps)))
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = track_size(source, track.name)
            stream.options = {"preset": preset, "crf": "18"}
            written = 0
            for i, picture in enumerate(src.decode(video=0)):
                if i in wanted_set:
                    # Constant-rate timestamps of our own (the raw H.264 has none to keep).
                    picture.pts, picture.time_base = written, 1 / rate
                    written += 1
                    for packet in stream.encode(picture):
                        out.mux(packet)
                    frames += 1
                if i >= last:
                    break
            for packet in stream.encode(None):
                out.mux(packet)
    return frames


def track_size(source, name: str) -> tuple[int, int, str]:
    cam = source.manifest.camera(name)
    return int(cam["width"]), int(cam["height"]), "yuv420p"


def identical_copies(session: Path, folder: OutputFolder) -> tuple[int, int]:
    source = load_session(session)
    same = total = 0
    for track in source.tracks:
        mapping = read_map_csv(folder.map(track.name))
        copied = {
            int(src): k
            for k, (src, reenc) in enumerate(zip(mapping["source_frame"], mapping["reencoded"], strict=True))
            if not reenc
        }
        with av.open(str(folder.video(track.name))) as c:
            samples = [bytes(p) for p in c.demux(video=0) if p.size]
        for packet in iter_packets(track, int(mapping["source_frame"].max()) + 1):
            k = copied.get(packet.index)
            if k is None:
                continue
            total += 1
            same += length_prefixed_nal_units(samples[k]) == annexb_nal_units(packet.data)
    return same, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--fps", type=float, default=56.0)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--height", type=int, default=864)
    ap.add_argument(
        "--baseline-preset", default="medium", help="libx264 preset of the baseline (SqueakShot: medium)"
    )
    ap.add_argument("--keep", type=Path, help="build the session here and keep it (default: temporary)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="syncrig-bench-") as tmp:
        root = args.keep or Path(tmp)
        t = time.perf_counter()
        existing = (
            sorted(p for p in root.glob("*/") if SessionLayout(p).manifest.is_file()) if args.keep else []
        )
        if existing:
            session = existing[0]  # --keep of an earlier run: reuse its recording, redo the outputs
            for old in (SessionLayout(session).synced.path, SessionLayout(session).trimmed):
                shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(root / "baseline", ignore_errors=True)
        else:
            session = make_session(root, args.cameras, args.seconds, args.fps, args.width, args.height)
        print(
            f"input: {args.cameras} cameras × {args.seconds:g} s at {args.width}x{args.height} "
            f"{args.fps:g} fps (generated in {time.perf_counter() - t:.1f} s)"
        )
        analyze_session(session)
        table, _ = current_match(load_session(session))
        complete = table.complete_rows()
        lo, hi = int(0.1 * table.rows), int(0.9 * table.rows)
        # Start mid-GOP in every camera (keyframes every fps recorded frames), a typical cut.
        gop = int(args.fps)
        phase = table.cells[complete] % gop
        mid = np.all((phase >= gop // 3) & (phase <= 2 * gop // 3), axis=1)
        start = int(complete[(complete >= lo) & mid][0])
        end = int(complete[complete <= hi][-1])

        t = time.perf_counter()
        synced = write_synced_outputs(session)
        t_synced = time.perf_counter() - t
        t = time.perf_counter()
        trim = trim_session(session, start, end)
        t_trim = time.perf_counter() - t
        ours = t_synced + t_trim
        n_synced = sum(c["frames"] for c in synced["cameras"].values())
        n_trim = sum(c["frames"] for c in trim["cameras"].values())
        reenc = sum(c["reencoded"] for c in trim["cameras"].values())
        print(f"  SyncRig synced outputs: {t_synced:7.2f} s for {n_synced} frames (all copied)")
        print(
            f"  SyncRig trim {start}-{end}: {t_trim:7.2f} s for {n_trim} frames "
            f"({reenc} re-encoded: partial GOPs)"
        )

        base_dir = root / "baseline"
        base_dir.mkdir()
        t = time.perf_counter()
        layout = SessionLayout(session)
        n_base = reencode_baseline(session, layout.synced, args.baseline_preset, base_dir)
        n_base += reencode_baseline(session, layout.trim(start, end), args.baseline_preset, base_dir)
        t_base = time.perf_counter() - t
        print(
            f"  baseline libx264 {args.baseline_preset} crf 18 re-encode: {t_base:7.2f} s for {n_base} frames"
        )
        print(f"  ratio baseline / SyncRig: {t_base / ours:,.0f}×   (goal ≥ 50×)")

        for label, folder in (
            ("synced", layout.synced),
            ("trim", layout.trim(start, end)),
        ):
            same, total = identical_copies(session, folder)
            print(f"  {label}: {same} of {total} copied packets bit-identical to the recording")
    return 0


if __name__ == "__main__":
    sys.exit(main())
