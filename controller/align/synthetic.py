"""External recordings made from a session's TTL out table, in every format `syncrig align` reads,
with their own clock: they start `lead_s` before T0 and run `ppm` fast, sampled at `rate_hz`, with
edge jitter and missing and spurious pulses. The truth (slope, offset) comes back with them.
Used by the tests and benchmarks/align_sweep.py; each writer produces the format's real layout
(the files neo and soundfile read)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ExternalClock:
    lead_s: float = 3.0  # the recorder starts this long before T0
    ppm: float = 0.0  # its sample clock runs this fast
    rate_hz: float = 30_000.0

    @property
    def slope(self) -> float:
        return 1.0 / (1.0 + self.ppm * 1e-6)

    @property
    def offset_ns(self) -> float:
        return -self.lead_s * 1e9

    def external_s(self, session_ns: np.ndarray) -> np.ndarray:
        return (np.asarray(session_ns, dtype=np.float64) / 1e9 + self.lead_s) * (1.0 + self.ppm * 1e-6)


@dataclass
class SyntheticEdges:
    index: np.ndarray  # sample index of each edge
    levels: np.ndarray
    exact_s: np.ndarray  # the edge's true time on the recorder's clock (before sampling)
    n_samples: int
    clock: ExternalClock


def synthesize(
    session_ns: np.ndarray,
    levels: np.ndarray,
    clock: ExternalClock,
    rng: np.random.Generator,
    jitter_ns: float = 1000.0,
    missing: int = 3,
    spurious: int = 3,
    tail_s: float = 2.0,
) -> SyntheticEdges:
    """One line's edges (session ns since T0, levels) as the recorder samples them. Jitter is
    uniform in ±jitter_ns; a missing pulse (never the first) loses both edges; a spurious pulse is
    1 ms wide and falls between pulses (≥ 2 ms from any edge: a glitch on a pulse would be a
    distorted pulse)."""
    session_ns = np.asarray(session_ns, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.int8)
    rises = np.flatnonzero(levels[:-1] == 1)
    rises = rises[levels[rises + 1] == 0]
    # The train's first pulse is always kept: a strobe-only alignment rests on it (match.strobe_anchor)
    drop = (
        rng.choice(rises[1:], size=min(missing, rises.size - 1), replace=False)
        if missing
        else np.zeros(0, int)
    )
    keep = np.ones(session_ns.size, bool)
    keep[drop] = keep[drop + 1] = False
    t = clock.external_s(session_ns[keep] + rng.uniform(-jitter_ns, jitter_ns, keep.sum()))
    lv = levels[keep]
    end_s = clock.external_s(session_ns[-1:])[0] + tail_s
    placed = 0
    while placed < spurious:
        start = rng.uniform(0.2, end_s - 0.2)
        near = np.abs(t - start).min() if t.size else np.inf
        level_there = lv[np.searchsorted(t, start) - 1] if np.searchsorted(t, start) else 0
        if near < 0.003 or level_there:
            continue
        t = np.concatenate([t, [start, start + 0.001]])
        lv = np.concatenate([lv, [1, 0]]).astype(np.int8)
        order = np.argsort(t, kind="stable")
        t, lv = t[order], lv[order]
        placed += 1
    order = np.argsort(t, kind="stable")
    t, lv = t[order], lv[order]
    index = np.ceil(t * clock.rate_hz).astype(np.int64)  # the first sample that sees the new level
    return SyntheticEdges(index, lv, t, int(np.ceil(end_s * clock.rate_hz)), clock)


def level_trace(edges: SyntheticEdges) -> np.ndarray:
    """0/1 per sample."""
    step = np.zeros(edges.n_samples + 1, np.int8)
    np.add.at(
        step, np.clip(edges.index, 0, edges.n_samples), np.where(edges.levels == 1, 1, -1).astype(np.int8)
    )
    trace = np.cumsum(step[:-1], dtype=np.int16)
    return np.clip(trace, 0, 1).astype(np.int8)


def write_csv(edges: SyntheticEdges, path: Path) -> Path:
    """time_s,level: event times as a DAQ logs them (exact times, no sampling)."""
    rows = ["time_s,level"] + [f"{t:.9f},{lv}" for t, lv in zip(edges.exact_s, edges.levels, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_wav(edges: SyntheticEdges, path: Path, channel: int = 0, channels: int = 2, seed: int = 0) -> Path:
    """16-bit PCM; the TTL on `channel` at 80 % of full scale over a little noise, noise elsewhere."""
    import soundfile

    rng = np.random.default_rng(seed)
    data = rng.normal(0, 300, (edges.n_samples, channels)).astype(np.int16)
    data[:, channel] += level_trace(edges).astype(np.int16) * 26000
    soundfile.write(str(path), data, int(edges.clock.rate_hz), subtype="PCM_16")
    return path


def write_openephys(edges: SyntheticEdges, folder: Path, line: int = 1, first_sample: int = 123_456) -> Path:
    """Open Ephys GUI ≥ 0.6 binary format: Record Node/experiment1/recording1 with structure.oebin,
    a one-channel continuous stream and its TTL events (states ±line, sample_numbers, timestamps)."""
    rate = edges.clock.rate_hz
    stream = "Acquisition_Board-100.Rhythm Data"
    rec = folder / "Record Node 101" / "experiment1" / "recording1"
    cont = rec / "continuous" / stream
    ttl = rec / "events" / stream / "TTL"
    cont.mkdir(parents=True, exist_ok=True)
    ttl.mkdir(parents=True, exist_ok=True)
    samples = first_sample + np.arange(edges.n_samples, dtype=np.int64)
    np.zeros(edges.n_samples, np.int16).tofile(cont / "continuous.dat")
    np.save(cont / "sample_numbers.npy", samples)
    np.save(cont / "timestamps.npy", samples / rate)
    numbers = first_sample + edges.index
    np.save(ttl / "states.npy", np.where(edges.levels == 1, line, -line).astype(np.int16))
    np.save(ttl / "sample_numbers.npy", numbers.astype(np.int64))
    np.save(ttl / "timestamps.npy", numbers / rate)
    np.save(ttl / "full_words.npy", np.where(edges.levels == 1, 1 << (line - 1), 0).astype(np.uint64))
    channel = {"channel_name": "CH1", "description": "", "identifier": "", "history": "", "bit_volts": 0.195,
               "units": "uV"}  # fmt: skip
    structure = {
        "GUI version": "0.6.7",
        "continuous": [
            {
                "folder_name": f"{stream}/",
                "sample_rate": rate,
                "source_processor_name": "Acquisition Board",
                "source_processor_id": 100,
                "stream_name": "Rhythm Data",
                "recorded_processor": "Record Node",
                "recorded_processor_id": 101,
                "num_channels": 1,
                "channels": [channel],
            }
        ],
        "events": [
            {
                "folder_name": f"{stream}/TTL/",
                "channel_name": "Rhythm Data TTL",
                "description": "TTL events",
                "identifier": "",
                "sample_rate": rate,
                "type": "int16",
                "source_processor": "Acquisition Board",
                "stream_name": "Rhythm Data",
                "initial_state": 0,
            }
        ],
        "spikes": [],
    }
    (rec / "structure.oebin").write_text(json.dumps(structure, indent=2))
    return folder


def write_spikeglx(edges: SyntheticEdges, folder: Path, line: int = 0, run: str = "rec") -> Path:
    """SpikeGLX NI-DAQ stream: `<run>_g0/<run>_g0_t0.nidq.bin` (int16: one analog channel XA0 and the
    digital word, bit `line` = the TTL) and its `.nidq.meta`."""
    gate = folder / f"{run}_g0"
    gate.mkdir(parents=True, exist_ok=True)
    bin_path = gate / f"{run}_g0_t0.nidq.bin"
    data = np.zeros((edges.n_samples, 2), np.int16)
    data[:, 1] = level_trace(edges).astype(np.int16) << line
    data.tofile(bin_path)
    meta = {
        "acqMnMaXaDw": "0,0,1,1",
        "appVersion": "20230815",
        "fileCreateTime": "2026-01-01T00:00:00",
        "fileName": str(bin_path),
        "fileSHA1": "0",
        "fileSizeBytes": str(data.nbytes),
        "fileTimeSecs": f"{edges.n_samples / edges.clock.rate_hz:.6f}",
        "firstSample": "0",
        "gateMode": "Immediate",
        "nSavedChans": "2",
        "niAiRangeMax": "5",
        "niAiRangeMin": "-5",
        "niMAGain": "1",
        "niMNGain": "200",
        "niSampRate": f"{edges.clock.rate_hz:.6f}",
        "niXDBytes1": "1",
        "niXDChans1": "0:7",
        "snsMnMaXaDw": "0,0,1,1",
        "snsSaveChanSubset": "all",
        "typeThis": "nidq",
        "~snsChanMap": "(0,0,1,0,1)(XA0;0:0)(XD0;1:1)",
    }
    (gate / f"{run}_g0_t0.nidq.meta").write_text("".join(f"{k}={v}\n" for k, v in meta.items()))
    return bin_path


def synthetic_ttl_session(
    root: Path,
    seconds: float,
    fps: float = 30.0,
    roles: dict[str, int] | None = None,
    seed: int = 0,
    late_ns: float = 20_000.0,
    session_id: str = "20260101-000000-0001",
) -> Path:
    """A session directory with what `align` reads, made without agents: the manifest, cam0's
    frame table and its ttl/cam0.out.csv from the agent's own edge plan (ttl/schedule.py), each
    edge measured `late_ns` ± half that after its target (a thread's wake), for long sessions."""
    import random

    from syncrig_agent.contract.formats import FrameRow, SessionManifest, write_frame_row, write_manifest
    from syncrig_agent.contract.formats.frame_table import write_frame_header
    from syncrig_agent.contract.formats.ttl import TTL_OUT_COLUMNS, format_out_row, write_header
    from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
    from syncrig_agent.contract.layout import SessionLayout
    from syncrig_agent.ttl.schedule import plan_edges

    roles = roles or {"barcode": 13}
    session = Path(root) / session_id
    layout = SessionLayout(session)
    period = period_ns_for_fps(fps)
    t0 = 1_790_000_000_000_000_000 + seed * 1_000_000_007
    grid = FrameGrid(t0, period)
    frames = int(seconds * fps)
    stop = grid.target(frames)
    rng = np.random.default_rng(seed)
    layout.raw.path.mkdir(parents=True)
    layout.ttl.path.mkdir()
    with open(layout.raw.frames("cam0"), "w", encoding="ascii") as fh:
        write_frame_header(fh)
        for n in range(frames):
            t = grid.target(n)
            write_frame_row(fh, FrameRow(n, n, t, t, t, int(n % 30 == 0), 1000, t))
    with open(layout.ttl.out_csv("cam0"), "w", encoding="ascii") as fh:
        write_header(fh, TTL_OUT_COLUMNS)
        edge = 0
        for planned in plan_edges(grid, roles, min(5_000_000, period // 2), random.Random(seed)):
            if planned.unit_ns >= stop:
                if planned.target_ns > stop + 1_000_000_000:
                    break
                continue
            wall = planned.target_ns + round(late_ns * (1 + rng.uniform(-0.5, 0.5)))
            fh.write(format_out_row(edge, planned.role, planned.line, planned.level, planned.target_ns, wall))
            edge += 1
    write_manifest(
        session,
        SessionManifest(
            id=session_id,
            subject=None,
            project=None,
            created="2026-01-01T00:00:00Z",
            fps=fps,
            period_ns=period,
            t0_ns=t0,
            stop_ns=stop,
            cameras=[{"name": "cam0", "frames": frames}],
        ),
    )
    return session


def _qstring(text: str) -> bytes:
    if not text:
        return np.array([0xFFFFFFFF], "<u4").tobytes()
    data = text.encode("utf-16-le")
    return np.array([len(data)], "<u4").tobytes() + data


def write_intan(edges: SyntheticEdges, path: Path, line: int = 0, inputs: int = 8) -> Path:
    """An Intan RHD2000 `.rhd` (format 1.3, header attached, Intan's published layout): one amplifier
    channel and `inputs` board digital inputs, the TTL on input `line`; 60-sample data blocks
    (int32 timestamps, uint16 amplifier samples, the digital-input word with one bit per input)."""
    block = 60
    n = -(-edges.n_samples // block) * block
    head = [np.array([0xC6912702], "<u4").tobytes(), np.array([1, 3], "<i2").tobytes()]
    head.append(np.array([edges.clock.rate_hz], "<f4").tobytes())
    head.append(np.array([0], "<i2").tobytes())  # dsp_enabled
    head.append(np.array([1.0, 0.1, 7500.0, 1.0, 0.1, 7500.0], "<f4").tobytes())  # dsp / bandwidths
    head.append(np.array([0], "<i2").tobytes())  # notch_filter_mode
    head.append(np.array([1000.0, 1000.0], "<f4").tobytes())  # impedance test frequencies
    head += [_qstring("syncrig synthetic"), _qstring(""), _qstring("")]
    head.append(np.array([0, 0, 2], "<i2").tobytes())  # temp sensors, eval_board_mode, signal groups

    def channel(native: str, order: int, signal_type: int) -> bytes:
        ints = np.array([order, order, signal_type, 1, order, 0, 0, 0, 0, 0], "<i2").tobytes()
        return _qstring(native) + _qstring(native) + ints + np.array([0.0, 0.0], "<f4").tobytes()

    head += [_qstring("Port A"), _qstring("A"), np.array([1, 1, 1], "<i2").tobytes(), channel("A-000", 0, 0)]
    head += [_qstring("Board Digital Inputs"), _qstring("DIN"), np.array([1, inputs, 0], "<i2").tobytes()]
    head += [channel(f"DIGITAL-IN-{k + 1:02d}", k, 4) for k in range(inputs)]
    dtype = np.dtype([("t", "<i4", block), ("amp", "<u2", block), ("din", "<u2", block)])
    data = np.zeros(n // block, dtype)
    data["t"] = np.arange(n, dtype=np.int32).reshape(-1, block)
    data["amp"] = 32768
    trace = np.zeros(n, np.uint16)
    trace[: edges.n_samples] = level_trace(edges).astype(np.uint16) << line
    data["din"] = trace.reshape(-1, block)
    with open(path, "wb") as fh:
        fh.write(b"".join(head))
        fh.write(data.tobytes())
    return path
