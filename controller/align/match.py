"""Pairing an external recording's edges with the session's and fitting the clock map.

The map is `session_ns = slope · external_s · 1e9 + offset_ns` (session ns since T0). Anchors give
a first map: matching barcode values anywhere in the file, or the start of the strobe train (T0),
or the start marker. Then every edge is matched to the session's nearest edge of the same level
within a tolerance, in windows that double around the first anchor, refitting each time, so a rate
error of hundreds of ppm never moves a prediction by more than a fraction of the tolerance. Edges
with no partner (missing or spurious pulses) are left out, then outliers beyond 6 robust sigmas;
what is left is fitted by least squares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.align.barcodes import decode_barcodes
from controller.align.edges import AlignError, ExternalEdges
from syncrig_agent.contract.ttl import BARCODE, START_MARKER_NS

MAX_RESIDUAL_NS = 1_000_000  # a fit whose p99 residual is beyond 1 ms is a mismatch, not a map
MIN_MATCHED_FRACTION = 0.5  # of the external edges inside the session's span


@dataclass(frozen=True)
class SessionTrain:
    """One output line of one camera: its edges in session ns since T0 (measured times)."""

    camera: str
    role: str
    line: int
    times_ns: np.ndarray
    levels: np.ndarray
    strobe_period_ns: int | None = None
    strobe_width_ns: int | None = None


@dataclass(frozen=True)
class ClockMap:
    slope: float
    offset_ns: float

    def session_ns(self, external_s: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(external_s, dtype=np.float64) * 1e9 + self.offset_ns

    def external_s(self, session_ns: np.ndarray) -> np.ndarray:
        return (np.asarray(session_ns, dtype=np.float64) - self.offset_ns) / (self.slope * 1e9)


@dataclass
class Alignment:
    train: SessionTrain
    clock: ClockMap
    external_index: np.ndarray  # matched external edges
    session_index: np.ndarray  # their partners in the train
    residual_ns: np.ndarray
    anchors: dict = field(default_factory=dict)
    unmatched_external: int = 0
    unmatched_session: int = 0


def fit_line(x_s: np.ndarray, y_ns: np.ndarray) -> ClockMap:
    """Least squares y = slope·x·1e9 + offset, centred (float64 keeps ~1e-4 ns at 1e12 ns)."""
    x = np.asarray(x_s, dtype=np.float64) * 1e9
    y = np.asarray(y_ns, dtype=np.float64)
    if x.size == 1:
        return ClockMap(1.0, float(y[0] - x[0]))
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    slope = float((dx * (y - ym)).sum() / (dx * dx).sum())
    return ClockMap(slope, float(ym - slope * xm))


def _nearest(sorted_times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the nearest element of `sorted_times` for each t (sorted_times non-empty)."""
    i = np.clip(np.searchsorted(sorted_times, t), 1, len(sorted_times) - 1)
    return np.where(t - sorted_times[i - 1] <= sorted_times[i] - t, i - 1, i)


def _pair(ext: ExternalEdges, sel: np.ndarray, train: SessionTrain, clock: ClockMap, tol_ns: float):
    """(external idx, session idx) pairs within tol, same level, each session edge used once."""
    pred = clock.session_ns(ext.times_s[sel])
    ext_out, ses_out, dist_out = [], [], []
    for level in (0, 1):
        mine = sel[ext.levels[sel] == level]
        theirs = np.flatnonzero(train.levels == level)
        if mine.size == 0 or theirs.size == 0:
            continue
        p = pred[ext.levels[sel] == level]
        j = theirs[_nearest(train.times_ns[theirs], p)] if theirs.size > 1 else np.full(p.size, theirs[0])
        d = np.abs(p - train.times_ns[j])
        ok = d < tol_ns
        ext_out.append(mine[ok])
        ses_out.append(j[ok])
        dist_out.append(d[ok])
    if not ext_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    e, s, d = np.concatenate(ext_out), np.concatenate(ses_out), np.concatenate(dist_out)
    order = np.lexsort((d, s))  # by session edge, the closest first: keep one partner each
    e, s = e[order], s[order]
    first = np.concatenate([[True], s[1:] != s[:-1]])
    return e[first], s[first]


def _robust_fit(ext: ExternalEdges, train: SessionTrain, e: np.ndarray, s: np.ndarray, floor_ns: float):
    x, y = ext.times_s[e], train.times_ns[s]
    keep = np.ones(e.size, bool)
    clock = fit_line(x, y)
    for _ in range(4):
        r = y - clock.session_ns(x)
        mad = 1.4826 * np.median(np.abs(r[keep] - np.median(r[keep])))
        new = np.abs(r - np.median(r[keep])) <= max(6 * mad, floor_ns)
        if new.sum() < 2 or (new == keep).all():
            break
        keep = new
        clock = fit_line(x[keep], y[keep])
    return clock, e[keep], s[keep]


def refine(
    ext: ExternalEdges, train: SessionTrain, clock: ClockMap, start_s: float, tol_ns: float
) -> Alignment:
    """Match every edge around `start_s`, in doubling windows, refitting each time."""
    floor_ns = 3e9 / ext.rate_hz if ext.rate_hz else 20_000.0  # 3 samples: quantisation is not an outlier
    span = max(ext.times_s[-1] - start_s, start_s - ext.times_s[0], 1.0)
    half = 1.0
    while True:
        sel = np.flatnonzero(np.abs(ext.times_s - start_s) <= half)
        e, s = _pair(ext, sel, train, clock, tol_ns)
        if e.size >= 2:
            clock, e, s = _robust_fit(ext, train, e, s, floor_ns)
        if half >= span:
            break
        half *= 2
    residual = train.times_ns[s] - clock.session_ns(ext.times_s[e])
    return Alignment(train, clock, e, s, residual)


def barcode_anchors(ext: ExternalEdges, train: SessionTrain) -> tuple[ClockMap, float, dict]:
    end_s = ext.n_samples / ext.rate_hz if ext.n_samples and ext.rate_hz else ext.times_s[-1] + 1.0
    ext_t, ext_v = decode_barcodes(ext.times_s * 1e9, ext.levels, end_s * 1e9)
    ses_t, ses_v = decode_barcodes(train.times_ns, train.levels, np.inf)  # codes are sent whole
    if ext_v.size == 0:
        raise AlignError("no barcode found (no header pulse of the barcode's shape)")
    unique_e = {v: t for v, t in zip(ext_v, ext_t, strict=True) if (ext_v == v).sum() == 1}
    unique_s = {v: t for v, t in zip(ses_v, ses_t, strict=True) if (ses_v == v).sum() == 1}
    common = sorted(set(unique_e) & set(unique_s), key=lambda v: unique_e[v])
    info = {
        "barcodes_found": int(ext_v.size),
        "barcodes_in_session": int(ses_v.size),
        "barcodes_matched": len(common),
    }
    if len(common) < 2:
        raise AlignError(
            f"{ext_v.size} barcode(s) decoded, {len(common)} of them among the session's {ses_v.size} "
            "(at least 2 needed): a recording of another session, or another line on this channel?"
        )
    x = np.array([unique_e[v] for v in common]) / 1e9
    y = np.array([unique_s[v] for v in common])
    clock = fit_line(x, y)
    r = y - clock.session_ns(x)
    keep = np.abs(r - np.median(r)) < 1e6
    if keep.sum() < 2:
        raise AlignError(
            f"the {len(common)} matching barcodes do not lie on one clock line (residuals > 1 ms)"
        )
    return fit_line(x[keep], y[keep]), float(x[keep][0]), info


def _pulses(ext: ExternalEdges) -> tuple[np.ndarray, np.ndarray]:
    """(rising-edge times, widths) of complete pulses, seconds."""
    rises = np.flatnonzero(ext.levels[:-1] == 1)
    rises = rises[ext.levels[rises + 1] == 0]
    return ext.times_s[rises], ext.times_s[rises + 1] - ext.times_s[rises]


def strobe_anchor(ext: ExternalEdges, train: SessionTrain) -> tuple[ClockMap, float, dict]:
    assert train.strobe_period_ns and train.strobe_width_ns
    period_s, width_s = train.strobe_period_ns / 1e9, train.strobe_width_ns / 1e9
    sample_s = 1 / ext.rate_hz if ext.rate_hz else 0.0
    rises, widths = _pulses(ext)
    like = np.abs(widths - width_s) <= 0.2 * width_s + 2 * sample_s
    if like.sum() < 2:
        raise AlignError(f"no strobe train ({like.sum()} pulse(s) {width_s * 1e3:g} ms wide)")
    first = rises[like][0]
    # A glitch (narrower than half a strobe pulse) before the train is not the train running: the
    # acquisition boards' inputs pick them up, and refusing for one would lose a good recording.
    before = rises[(rises < first) & (widths >= 0.5 * width_s)]
    quiet = first - (before[-1] if before.size else 0.0)
    if quiet < 10 * period_s:
        raise AlignError(
            f"the strobe train is already running when the recording starts ({quiet * 1e3:.0f} ms after "
            "the previous pulse): a strobe alone cannot say which frame a pulse belongs to. Start the "
            "recorder before SyncRig, or record the barcode line (--ttl-out barcode)"
        )
    return ClockMap(1.0, -first * 1e9), float(first), {"strobe_start_s": float(first)}


def start_anchor(ext: ExternalEdges, train: SessionTrain) -> tuple[ClockMap, float, dict]:
    sample_s = 1 / ext.rate_hz if ext.rate_hz else 0.0
    rises, widths = _pulses(ext)
    marker = START_MARKER_NS / 1e9
    like = np.flatnonzero(np.abs(widths - marker) <= 0.1 * marker + 2 * sample_s)
    if like.size != 1:
        raise AlignError(
            f"{like.size} pulses of the start marker's width ({marker * 1e3:g} ms); expected one"
        )
    return ClockMap(1.0, -rises[like[0]] * 1e9), float(rises[like[0]]), {"offset_only": True}


ANCHORS = {"barcode": barcode_anchors, "strobe": strobe_anchor, "start": start_anchor}


def tolerance_ns(train: SessionTrain) -> float:
    if train.role == "strobe" and train.strobe_period_ns and train.strobe_width_ns:
        return min(train.strobe_width_ns, train.strobe_period_ns - train.strobe_width_ns) / 2
    if train.role == "barcode":
        return BARCODE.bit_ns / 2
    return START_MARKER_NS / 2


def align_train(ext: ExternalEdges, train: SessionTrain) -> Alignment:
    """The clock map of `ext` onto `train`, or AlignError saying why they do not match."""
    clock, start_s, anchors = ANCHORS[train.role](ext, train)
    result = refine(ext, train, clock, start_s, tolerance_ns(train))
    result.anchors = anchors
    if anchors.get("offset_only"):
        # One pulse cannot measure a rate: the recorder's clock is taken as exact, offset from the
        # rising edge alone (100 ppm over a 10-minute session would be 60 ms: say so, do not guess).
        rise = result.external_index[ext.levels[result.external_index] == 1][:1]
        partner = result.session_index[ext.levels[result.external_index] == 1][:1]
        if rise.size:
            result.clock = ClockMap(1.0, float(train.times_ns[partner[0]] - ext.times_s[rise[0]] * 1e9))
            result.residual_ns = train.times_ns[result.session_index] - result.clock.session_ns(
                ext.times_s[result.external_index]
            )
    if result.external_index.size < 2:
        raise AlignError(f"only {result.external_index.size} edge(s) match the session's {train.role} edges")
    # Judge on the edges that fall inside the session's span (the recorder may run longer).
    mapped = result.clock.session_ns(ext.times_s)
    inside = (mapped >= train.times_ns[0] - 1e6) & (mapped <= train.times_ns[-1] + 1e6)
    fraction = result.external_index.size / max(1, int(inside.sum()))
    if fraction < MIN_MATCHED_FRACTION:
        raise AlignError(
            f"only {result.external_index.size} of the {int(inside.sum())} edges in the session's span match "
            f"its {train.role} edges ({fraction:.0%}): not this session's pulses"
        )
    p99 = float(np.percentile(np.abs(result.residual_ns), 99))
    if p99 > MAX_RESIDUAL_NS:
        raise AlignError(f"the edges do not fit one clock (p99 residual {p99 / 1e3:.0f} µs > 1 ms)")
    result.unmatched_external = int(inside.sum()) - result.external_index.size
    result.unmatched_session = int(train.times_ns.size - result.session_index.size)
    return result
