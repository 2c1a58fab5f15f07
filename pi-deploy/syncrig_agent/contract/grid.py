"""The absolute frame grid every camera shares: frame n is due at Tn = T0 + n·P.

T0 and P are integers in nanoseconds on the shared (PTP/chrony-disciplined) wall clock, so every
camera computes bit-identical targets from the same two numbers and no per-frame message is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


def period_ns_for_fps(fps: float | Fraction) -> int:
    """Frame period in integer nanoseconds, rounded to the nearest ns.

    Rounding once here (and only here) means the desktop and every Pi agree on P exactly.
    """
    fps = Fraction(fps).limit_denominator(1001 * 1000)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {float(fps)}")
    return round(Fraction(10**9) / fps)


@dataclass(frozen=True)
class FrameGrid:
    t0_ns: int
    period_ns: int

    def __post_init__(self) -> None:
        if self.period_ns <= 0:
            raise ValueError(f"period_ns must be positive, got {self.period_ns}")

    def target(self, index: int) -> int:
        """Due time of grid slot `index` (ns, shared clock)."""
        return self.t0_ns + index * self.period_ns

    def first_index_not_before(self, t_ns: int) -> int:
        """Smallest n with Tn >= t_ns (never negative): where a late camera rejoins the grid."""
        if t_ns <= self.t0_ns:
            return 0
        return -((self.t0_ns - t_ns) // self.period_ns)

    def nearest_index(self, t_ns: int) -> int:
        """Grid slot whose target is closest to t_ns (used to label free-running frames)."""
        return (t_ns - self.t0_ns + self.period_ns // 2) // self.period_ns

    def phase_error_ns(self, t_ns: int) -> int:
        """Signed distance of t_ns from its nearest grid target."""
        return t_ns - self.target(self.nearest_index(t_ns))

    def end_index(self, stop_ns: int | None) -> int | None:
        """First index NOT recorded when recording stops at stop_ns (slots with Tn < stop_ns are kept)."""
        if stop_ns is None:
            return None
        return self.first_index_not_before(stop_ns)
