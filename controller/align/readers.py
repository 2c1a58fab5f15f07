"""Reading one channel's edges from another instrument's recording, through maintained readers:
neo for Open Ephys binary, SpikeGLX and Intan; soundfile for WAV/FLAC (any rate: 250 kHz
ultrasonic microphones included); the csv module for a list of event times.

`--channel K` means: Open Ephys, the TTL line K (states ±K) of the recording's event stream;
SpikeGLX, the NI-DAQ digital line XD K (the .nidq.bin digital word; imec SY channels are not read);
Intan (.rhd, header attached), the K-th enabled board digital input (0-based); WAV/FLAC, channel
K of the file (0-based), thresholded half-way between its low and high levels; CSV, rows whose
`channel` column is K (all rows when there is no such column). Times are seconds since the
recording's first sample; edges in sampled formats also carry the sample index."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from controller.align.edges import AlignError, ExternalEdges, edges_of_blocks

FORMATS = ("openephys", "spikeglx", "intan", "wav", "csv")
_BLOCK = 1 << 20  # samples per block read from large files


def guess_format(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir() or name == "structure.oebin":
        return "spikeglx" if list(path.glob("*.nidq.meta")) else "openephys"
    if name.endswith((".nidq.bin", ".nidq.meta")):
        return "spikeglx"
    if name.endswith(".rhd"):
        return "intan"
    if name.endswith((".wav", ".flac")):
        return "wav"
    if name.endswith((".csv", ".txt")):
        return "csv"
    raise AlignError(f"{path}: cannot tell the format from the name; give --format ({', '.join(FORMATS)})")


def read_edges(path: Path | str, fmt: str | None = None, channel: int = 0) -> ExternalEdges:
    path = Path(path)
    if not path.exists():
        raise AlignError(f"{path}: no such file or folder")
    fmt = fmt or guess_format(path)
    reader = {"openephys": _openephys, "spikeglx": _spikeglx, "intan": _intan, "wav": _wav, "csv": _csv}.get(
        fmt
    )
    if reader is None:
        raise AlignError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    try:
        edges = reader(path, channel)
    except AlignError:
        raise
    except Exception as exc:  # a reader's own complaint about a malformed file, named
        raise AlignError(f"{path}: not a readable {fmt} recording: {exc}") from None
    if edges.times_s.size == 0:
        raise AlignError(f"{path}: no pulses in channel {channel} ({fmt})")
    return edges


def _neo(cls_name: str, **kwargs: object):
    try:
        import neo.rawio
    except ImportError:
        raise AlignError("reading ephys formats needs neo: pip install 'syncrig[align]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        io = getattr(neo.rawio, cls_name)(**kwargs)
        io.parse_header()
    return io


def _openephys(path: Path, channel: int) -> ExternalEdges:
    folder = path.parent if path.name == "structure.oebin" else path
    io = _neo("OpenEphysBinaryRawIO", dirname=str(folder))
    streams = io.header["signal_streams"]
    if len(streams) == 0:
        raise AlignError(f"{path}: no continuous stream (needed for the sample rate and the file start)")
    rate = float(io.get_signal_sampling_rate(stream_index=0))
    t_start = float(io.get_signal_t_start(0, 0, stream_index=0))
    n = int(io.get_signal_size(0, 0, stream_index=0))
    times, levels = [], []
    for k in range(io.event_channels_count()):
        ts, durations, labels = io.get_event_timestamps(0, 0, event_channel_index=k)
        on = labels.astype(str) == str(channel)
        if not on.any():
            continue
        rise = io.rescale_event_timestamp(ts[on], dtype="float64", event_channel_index=k)
        times.append(rise)
        levels.append(np.ones(rise.size, np.int8))
        if durations is not None:  # TTL with states: pulses (else rising edges only)
            width = io.rescale_epoch_duration(durations[on], dtype="float64", event_channel_index=k)
            times.append(rise + width)
            levels.append(np.zeros(rise.size, np.int8))
    if not times:
        raise AlignError(f"{path}: no pulses on TTL line {channel} (openephys)")
    index = np.round((np.concatenate(times) - t_start) * rate).astype(np.int64)
    return ExternalEdges.from_samples(
        index, np.concatenate(levels), rate, n, format="openephys", channel=channel, source=str(path)
    )


def _spikeglx(path: Path, channel: int) -> ExternalEdges:
    folder = path if path.is_dir() else path.parent
    io = _neo("SpikeGLXRawIO", dirname=str(folder))
    names = [str(n) for n in io.header["event_channels"]["name"]]
    want = f"XD{channel}"
    if want not in names:
        raise AlignError(f"{path}: no NI-DAQ digital line {want} (lines: {', '.join(names) or 'none'})")
    k = names.index(want)
    stream = [str(s) for s in io.header["signal_streams"]["name"]].index("nidq")
    rate = float(io.get_signal_sampling_rate(stream_index=stream))
    n = int(io.get_signal_size(0, 0, stream_index=stream))
    ts, _, labels = io.get_event_timestamps(0, 0, event_channel_index=k)
    levels = np.char.endswith(labels.astype(str), " ON").astype(np.int8)
    return ExternalEdges.from_samples(
        ts, levels, rate, n, format="spikeglx", channel=channel, source=str(path)
    )


def _intan(path: Path, channel: int) -> ExternalEdges:
    io = _neo("IntanRawIO", filename=str(path))
    streams = [str(s) for s in io.header["signal_streams"]["name"]]
    found = [i for i, s in enumerate(streams) if "DIGITAL-IN" in s.upper() or "digital input" in s.lower()]
    if not found:
        raise AlignError(f"{path}: no board digital input stream (streams: {', '.join(streams)})")
    stream = found[0]
    chans = io.header["signal_channels"]
    ids = chans[chans["stream_id"] == io.header["signal_streams"]["id"][stream]]["name"]
    if not 0 <= channel < len(ids):
        raise AlignError(f"{path}: no digital input {channel} (the file has {len(ids)}: 0..{len(ids) - 1})")
    rate = float(io.get_signal_sampling_rate(stream_index=stream))
    n = int(io.get_signal_size(0, 0, stream_index=stream))
    blocks = (
        io.get_analogsignal_chunk(
            0, 0, i, min(i + _BLOCK, n), stream_index=stream, channel_indexes=[channel]
        )[:, 0]
        for i in range(0, n, _BLOCK)
    )
    index, levels, _ = edges_of_blocks(blocks, 0.0, 1.0)
    return ExternalEdges.from_samples(
        index, levels, rate, n, format="intan", channel=channel, source=str(path)
    )


def _wav(path: Path, channel: int) -> ExternalEdges:
    try:
        import soundfile
    except ImportError:
        raise AlignError("reading audio needs soundfile: pip install 'syncrig[align]'") from None
    info = soundfile.info(str(path))
    if not 0 <= channel < info.channels:
        raise AlignError(
            f"{path}: no channel {channel} (the file has {info.channels}: 0..{info.channels - 1})"
        )

    def blocks():
        for block in soundfile.blocks(str(path), blocksize=_BLOCK, dtype="float32", always_2d=True):
            yield block[:, channel]

    low, high = np.inf, -np.inf
    for block in blocks():
        low, high = min(low, float(np.percentile(block, 1))), max(high, float(block.max()))
    if not high - low > 0.2:  # of full scale: silence or noise, not a TTL (a TTL fills most of it)
        raise AlignError(
            f"{path}: no pulses in channel {channel} (its level spans only {high - low:.3f} of full scale)"
        )
    index, levels, n = edges_of_blocks(blocks(), low, high)
    return ExternalEdges.from_samples(
        index, levels, float(info.samplerate), n, format="wav", channel=channel, source=str(path)
    )


def _csv(path: Path, channel: int) -> ExternalEdges:
    """A header naming `time_s` (required), `level` (1/0; default: every row a rising edge of a
    pulse whose falling edge is not known) and `channel` (optional)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or "time_s" not in [c.strip() for c in rows[0]]:
        raise AlignError(f"{path}: the first row must be a header with a time_s column (and level, channel)")
    header = [c.strip() for c in rows[0]]
    col = {name: header.index(name) for name in ("time_s", "level", "channel") if name in header}
    times, levels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            if "channel" in col and int(row[col["channel"]]) != channel:
                continue
            times.append(float(row[col["time_s"]]))
            levels.append(int(row[col["level"]]) if "level" in col else 1)
        except (ValueError, IndexError):
            raise AlignError(
                f"{path}: row {line}: time_s must be a number, level 0/1, channel an integer"
            ) from None
    if "level" not in col and times:  # rising edges only: each pulse's fall unknown, so one edge kind
        return ExternalEdges(
            np.asarray(times), np.ones(len(times)), None, None, None, "csv", channel, str(path)
        )
    return ExternalEdges(np.asarray(times), np.asarray(levels), None, None, None, "csv", channel, str(path))
