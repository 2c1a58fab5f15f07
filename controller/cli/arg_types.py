"""argparse value types shared by every `syncrig` subcommand: one wording of each error."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from syncrig_agent.contract.ids import InvalidName, validate_subject_id


def _number(kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None


def positive(kind: type) -> Callable[[str], int | float]:
    """`kind` (int or float) > 0."""

    def parse(text: str):
        value = _number(kind, text)
        if not value > 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


positive_float = positive(float)


def float_list(text: str) -> list[float]:
    """Comma-separated numbers (empty items skipped), one per camera."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def ttl_roles(text: str) -> list[str]:
    """Comma-separated TTL output roles (contract.ttl.TTL_ROLES), each at most once."""
    from syncrig_agent.contract.ttl import TTL_ROLES

    roles = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in roles if r not in TTL_ROLES]
    if bad or not roles or len(set(roles)) != len(roles):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated combination of {','.join(TTL_ROLES)}, got {text!r}"
        )
    return roles


def subject_id(kind: str) -> Callable[[str], str]:
    """A subject or project ID as the session manifest accepts it; `kind` names it in the error."""

    def parse(text: str) -> str:
        try:
            return validate_subject_id(text, kind)
        except InvalidName as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
