"""What a TTL line backend does: drive output lines, and hand over input edges stamped on the shared
clock. One file per kind (`simulated.py`, `gpiod_lines.py`); `factory.py` picks one."""

from __future__ import annotations

from dataclasses import dataclass

from syncrig_agent.timing.camera_clock import CameraClock


class TtlLineError(RuntimeError):
    """The lines cannot be had or driven (no such chip, line busy, no permission)."""


@dataclass(frozen=True)
class InputLine:
    line: int
    name: str
    edges: str = "both"  # "both", "rising", "falling"
    debounce_us: float = 0.0
    record: bool = False  # a gate: the controller records while it is high

    @classmethod
    def from_setting(cls, entry: dict) -> InputLine:
        return cls(
            line=int(entry["line"]),
            name=str(entry.get("name", f"in{entry['line']}")),
            edges=str(entry.get("edges", "both")),
            debounce_us=float(entry.get("debounce_us", 0.0)),
            record=bool(entry.get("record", False)),
        )


@dataclass(frozen=True)
class InputEdge:
    line: int
    level: int  # 1 rising, 0 falling
    wall_ns: int  # on the shared clock (the camera clock)


class TtlLines:
    """Output lines start low; `set` drives one and returns the shared-clock time read right after
    the write returned; `read_edges` waits up to `timeout_s` for input edges."""

    kind = ""

    def __init__(self, clock: CameraClock) -> None:
        self.clock = clock
        self.outputs: list[int] = []
        self.inputs: list[InputLine] = []
        self.levels: dict[int, int] = {}  # each output line's level as last driven

    def open(self, outputs: list[int], inputs: list[InputLine]) -> None:
        self.outputs = list(outputs)
        self.inputs = list(inputs)
        self.levels = {line: 0 for line in outputs}

    def set(self, line: int, level: int) -> int:
        """Drive `line` to `level`; the shared-clock time read right after."""
        if line not in self.levels:
            raise TtlLineError(f"line {line} is not an output of this agent")
        wall = self._drive(line, level)
        self.levels[line] = level
        return wall

    def _drive(self, line: int, level: int) -> int:
        raise NotImplementedError

    def read_edges(self, timeout_s: float) -> list[InputEdge]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "outputs": self.outputs, "inputs": [i.line for i in self.inputs]}
