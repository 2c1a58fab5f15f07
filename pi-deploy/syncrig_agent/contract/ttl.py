"""TTL signals on the shared clock: the output roles and the barcode's shape, one home for the agent
that sends them and the desktop that finds them in another instrument's recording (`syncrig align`).

- **start**: one pulse of `START_MARKER_NS` rising at T0.
- **strobe**: a pulse rising at every grid target Tn, `width` long (≤ half a period).
- **barcode**: every `interval_ns` a code in the manner of Open Ephys/IBL barcodes: the line rests low
  for at least `quiet_ns`, a header pulse `header_ns` high, `gap_ns` low, then `bits` bits of
  `bit_ns`, most significant first (high = 1), then low. The value is random per code, so one
  channel identifies every moment of a session (and no other session) unambiguously; a decoder
  needs only these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

TTL_ROLES = ("start", "strobe", "barcode")
START_MARKER_NS = 100_000_000  # wide enough to tell from any strobe, short enough to end early
# Acquisition boards drop pulses under ~5 ms (issue reports); every barcode element is ≥ 10 ms.
MIN_PULSE_NS = 5_000_000


@dataclass(frozen=True)
class BarcodeSpec:
    bits: int = 24
    bit_ns: int = 10_000_000
    header_ns: int = 30_000_000
    gap_ns: int = 10_000_000
    interval_ns: int = 3_000_000_000
    first_ns: int = 500_000_000  # the first code starts this long after T0 (a quiet lead-in)

    @property
    def quiet_ns(self) -> int:
        """Low time that precedes every header and nothing inside a code (codes are shorter)."""
        return min(self.first_ns, self.interval_ns - self.duration_ns) // 2

    @property
    def duration_ns(self) -> int:
        return self.header_ns + self.gap_ns + self.bits * self.bit_ns

    def start_ns(self, t0_ns: int, k: int) -> int:
        """When code k starts (its header's rising edge), on the shared clock."""
        return t0_ns + self.first_ns + k * self.interval_ns

    def levels(self, value: int) -> list[tuple[int, int]]:
        """(offset from the code's start in ns, level) for every edge of `value`'s code."""
        if not 0 <= value < 1 << self.bits:
            raise ValueError(f"barcode value {value} does not fit {self.bits} bits")
        edges = [(0, 1), (self.header_ns, 0)]
        level = 0
        start = self.header_ns + self.gap_ns
        for i in range(self.bits):
            bit = (value >> (self.bits - 1 - i)) & 1
            if bit != level:
                edges.append((start + i * self.bit_ns, bit))
                level = bit
        if level:
            edges.append((start + self.bits * self.bit_ns, 0))
        return edges


BARCODE = BarcodeSpec()
