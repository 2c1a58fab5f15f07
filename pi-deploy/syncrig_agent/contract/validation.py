"""Field checks shared by the agent's settings and the desktop's rig configuration, so both
refuse the same values with the same wording (the field is always named). Addresses ("HOST:PORT")
are part of the contract too: links, receivers and settings all parse them here."""

from __future__ import annotations

from collections.abc import Mapping


def check_ranges(
    obj: object, ranges: Mapping[str, tuple[float, float] | tuple[float, float, str]], error: type[ValueError]
) -> None:
    """Every named attribute must be a number (not a bool) within its inclusive range; a range's
    third item is its unit, which the error gives as the field's label does (e.g. "bit/s")."""
    for name, (low, high, *unit) in ranges.items():
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            in_unit = f" {unit[0]}" if unit and unit[0] else ""
            raise error(f"{name}: must be a number in {low}..{high}{in_unit}, got {value!r}")


def check_frame_size(obj: object, error: type[ValueError]) -> None:
    """width/height: even (4:2:0 chroma needs it) integers in 64..8192."""
    for name in ("width", "height"):
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 8192 or value % 2:
            raise error(f"{name}: must be an even number of pixels in 64..8192, got {value!r}")


class SettingsError(ValueError):
    """A setting with a bad value; the message names the field."""


def parse_address(text: str, default_port: int, field_name: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host:
        raise SettingsError(f"{field_name}: missing host in {text!r}")
    try:
        port_num = int(port)
    except ValueError:
        raise SettingsError(f"{field_name}: port must be a number in {text!r}") from None
    if not 0 <= port_num <= 65535:
        raise SettingsError(f"{field_name}: port {port_num} out of range")
    return host, port_num
