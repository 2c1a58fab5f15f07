"""Fuzzing a live cam0 at the command layer: random authenticated requests (every one gets an
answer, no file appears except those of a START it accepted). The agent never crashes or hangs.
Below the command layer (raw bytes on its ports): test_agent_fuzz_raw.py.

Runs SYNCRIG_FUZZ_EXAMPLES cases (default 200); the slow long run uses at least 10,000."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncrig_agent.contract.protocol import (
    ConnectionClosed,
    RemoteError,
    RequestTimeout,
)

from protocol_support import FUZZ_EXAMPLES, json_value

# Each field is either plausible or garbage, so the fuzz reaches both the validators and, now and
# then, a START that is accepted and really records.
valid_session = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True).filter(
    lambda v: ".." not in v
)
random_request = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "stop", "status", "ping", "hello", "bogus", "START"])},
    optional={
        "session_id": st.one_of(valid_session, st.text(max_size=20), st.sampled_from(["../x", "a/b", ".."])),
        "period_ns": st.one_of(
            st.sampled_from([16_666_667, 33_333_333]),
            st.integers(-10, 2 * 10**10),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        "files": st.one_of(
            st.just({"cam0": "cam0"}),
            st.dictionaries(
                st.sampled_from(["cam0", "cam1", "../x", "c;d"]), st.sampled_from(["cam0", "x/y", ""])
            ),
            json_value,
        ),
        "frames": st.one_of(st.integers(1, 5), json_value),
        "stop_ns": json_value,
        "at_ns": st.one_of(st.integers(0, 2**63), json_value),
        "fps": st.one_of(st.sampled_from([30, 60.0]), json_value),
    },
)
plausible_start = st.fixed_dictionaries(
    {
        "type": st.just("start"),
        "session_id": valid_session,
        "period_ns": st.sampled_from([16_666_667, 33_333_333]),
        "files": st.just({"cam0": "cam0"}),
    },
    optional={"frames": st.one_of(st.integers(1, 5), json_value), "fps": json_value, "stop_ns": json_value},
)
request = st.one_of(random_request, plausible_start)


def fuzz_agent(make_rig, examples: int) -> None:
    rig = make_rig(1, heartbeat_interval_s=0.5, heartbeat_timeout_s=10.0)
    link = rig.link()
    link.connect()
    accepted: set[str] = set()

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request)
    def run(msg: dict) -> None:
        try:
            reply = link.request(msg, timeout=5.0)
            assert reply["type"] == "reply" and reply["ok"] is True
            if msg["type"] == "start":
                accepted.add(msg["session_id"])
        except RemoteError as exc:
            assert exc.code in {
                "bad_field",
                "unknown_command",
                "cameras_missing",
                "start_failed",
                "busy",
                "unexpected",
            }, exc
        except (ConnectionClosed, RequestTimeout) as exc:
            raise AssertionError(f"agent stopped answering after {msg!r}: {exc}") from None
        if msg["type"] == "start":
            link.stop(timeout=10.0)  # whatever happened, leave the rig idle for the next case

    run()
    assert accepted, "the fuzz never produced an accepted START: it only exercised the validators"
    status = link.status()
    assert status["server"]["state"] == "idle"
    link.close()
    assert rig.processes["cam0"].poll() is None  # still running
    stray = [
        p
        for p in rig.data_dir("cam0").rglob("*")
        if p.is_file() and p.relative_to(rig.data_dir("cam0")).parts[0] not in accepted
    ]
    assert stray == [], stray


def test_random_requests_never_break_the_agent(make_rig) -> None:
    fuzz_agent(make_rig, FUZZ_EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_random_requests_long_run(make_rig) -> None:
    fuzz_agent(make_rig, max(FUZZ_EXAMPLES, 10_000))
