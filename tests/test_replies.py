"""Typed replies (contract/protocol/replies.py) and the one list of drop causes (contract/drops.py):
a reply read and written again is the same bytes; a missing or ill-typed field is named by its
path; the manifest, the capture stats and the camera card count the same causes."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from controller.rig.cameras import CameraInfo
from controller.rig.cards import camera_card
from syncrig_agent.backends.base import CaptureStats
from syncrig_agent.contract.drops import DROP_CAUSES, NOT_REACHED, drops_by_cause, total_drops
from syncrig_agent.contract.protocol.replies import (
    CameraStopResult,
    InvalidReply,
    RigStatus,
    StartReply,
    StatusReply,
    StopReply,
)

STATS = {
    "captured": 90,
    "sensor_drops": 1,
    "late_skips": 2,
    "queue_overflows": 0,
    "after_failure": 0,
    "before_lock": 4,
    "slot_repeats": 3,
    "phase_lock": None,
    "first_index": 0,
    "last_index": 96,
    "wake_error": {"p50_us": 12.5, "p99_us": 80.0, "max_us": 91.25},
}


def camera_status(name: str, state: str = "recording") -> dict:
    return {
        "name": name,
        "role": "server" if name == "cam0" else "client",
        "state": state,
        "session": {
            "session_id": "s1",
            "running": True,
            "frames": 90,
            "stats": STATS,
            "error": None,
            "t0_ns": 1_000,
            "period_ns": 33_333_333,
        },
        "clock": {"kind": "simulated", "offset_ns": 5},
        "clock_now_ns": 3_000_000_000,
        "clock_sync": {"source": "ptp", "state": "synchronized", "offset_ns": 40},
        "backend": {"kind": "synthetic", "width": 320, "height": 240},
        "health": {"disk": {"free_bytes": 10, "total_bytes": 20}, "temperature_c": None, "throttled": None},
        "preview": {"available": False},
        "phase_lock": None,
        "ttl": {
            "lines": {"kind": "simulated", "outputs": [6], "inputs": [20]},
            "inputs": {"gate": {"edges": 2, "record": True, "level": 0, "wall_ns": 2_999_000_000}},
        },
    }


SESSION = {
    "session_id": "s1",
    "t0_ns": 1_000,
    "period_ns": 33_333_333,
    "fps": 30.0,
    "cameras": ["cam0", "cam1"],
    "lead_ns": 150_000_000,
    "stop_ns": None,
    "started_at_ns": 17,
}

STATUS_REPLY = {
    "status": {
        "server": camera_status("cam0"),
        "clients": {
            "cam1": {
                "connected": True,
                "status": camera_status("cam1"),
                "status_age_s": 0.25,
                "rtt_ns": 120_000,
                "clock_offset_ns": -3_000,
                "close_reason": None,
            },
            "cam2": {
                "connected": False,
                "status": None,
                "status_age_s": None,
                "rtt_ns": None,
                "clock_offset_ns": None,
                "close_reason": "heartbeat timeout",
            },
        },
        "session": SESSION,
    }
}

ARMED = {
    "camera": "cam1",
    "armed_at_ns": 900,
    "arm_duration_ns": 80_000_000,
    "late": False,
    "realtime": None,
    "encoder": "libx264",
}
START_REPLY = {
    "t0_ns": 1_000,
    "period_ns": 33_333_333,
    "lead_ns": 150_000_000,
    "stop_ns": 3_000,
    "cameras": {"cam1": ARMED},
    "late": [],
}
STOP_REPLY = {
    "stop_ns": 3_000,
    "session": SESSION,
    "cameras": {
        "cam0": {"camera": "cam0", "recording": False, "summary": {"frames": 90, "stats": STATS}},
        "cam1": {"camera": "cam1", "error": "not connected: it stops on its own"},
    },
}


def wire(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    ("kind", "data"), [(StatusReply, STATUS_REPLY), (StartReply, START_REPLY), (StopReply, STOP_REPLY)]
)
def test_a_reply_read_and_written_again_is_the_same_bytes(kind, data) -> None:  # noqa: ANN001
    reply = kind.from_dict(data)
    assert wire(reply.to_dict()) == wire(data)
    # ...and it reads as its JSON, for scripts that index it
    assert dict(reply) == data and reply[next(iter(data))] == data[next(iter(data))]


def test_the_envelope_and_unknown_fields_are_ignored() -> None:
    reply = StartReply.from_dict({"type": "reply", "re": 4, "ok": True, "newer_field": 1, **START_REPLY})
    assert reply.to_dict() == START_REPLY
    assert reply.cameras["cam1"].arm_duration_ns == 80_000_000


def test_a_missing_field_is_named() -> None:
    data = {k: v for k, v in START_REPLY.items() if k != "t0_ns"}
    with pytest.raises(InvalidReply, match="StartReply: missing field 't0_ns'"):
        StartReply.from_dict(data)
    status = json.loads(json.dumps(STATUS_REPLY))
    del status["status"]["clients"]["cam1"]["status"]["state"]
    where = r"StatusReply\.status\.clients\.cam1\.status"
    with pytest.raises(InvalidReply, match=where + ": missing field 'state'"):
        StatusReply.from_dict(status)


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        (("t0_ns",), True, "t0_ns: must be an integer, got True"),  # a bool is not an integer
        (("late",), "cam1", "late: must be a list"),
        (("late",), [3], r"late\[0\]: must be a string"),
        (("cameras", "cam1", "late"), 0, r"cameras\.cam1\.late: must be true or false"),
        (("cameras", "cam1"), None, r"cameras\.cam1: must be an object"),
    ],
)
def test_an_ill_typed_field_is_named(path: tuple[str, ...], value: object, expect: str) -> None:
    data = json.loads(json.dumps(START_REPLY))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidReply, match=expect):
        StartReply.from_dict(data)


def test_a_stop_result_is_a_summary_or_an_error() -> None:
    ok = CameraStopResult(camera="cam0", recording=False, summary=None)
    failed = CameraStopResult(camera="cam1", error="timeout")
    assert ok.to_dict() == {"camera": "cam0", "recording": False, "summary": None}
    assert failed.to_dict() == {"camera": "cam1", "error": "timeout"}


def test_camera_links_put_cam0_first_as_the_reference() -> None:
    status = StatusReply.from_dict(STATUS_REPLY).status
    links = status.camera_links()
    assert list(links) == ["cam0", "cam1", "cam2"] and status.reference == "cam0"
    assert links["cam0"].clock_offset_ns == 0 and links["cam0"].status is status.server
    assert RigStatus.from_dict({"server": {"state": "idle"}, "clients": {}}).reference == "cam0"


def test_every_drop_cause_is_a_capture_counter_in_the_summary() -> None:
    counters = {f.name for f in fields(CaptureStats)}
    stats = CaptureStats(sensor_drops=1, late_skips=2, queue_overflows=3, after_failure=4, before_lock=5)
    summary = stats.summary()
    for cause in DROP_CAUSES:
        assert cause.stat in counters and cause.stat in summary and cause.meaning
    assert drops_by_cause(summary) == {
        "sensor": 1,
        "late_skips": 2,
        "queue_overflows": 3,
        "after_failure": 4,
        "before_lock": 5,
    }
    assert NOT_REACHED not in drops_by_cause(summary) and total_drops(summary) == 15


def test_the_card_counts_every_cause_including_slots_before_the_sensor_locked() -> None:
    status = StatusReply.from_dict(STATUS_REPLY).status
    card = camera_card(CameraInfo("cam1", "pi1", "client", 320, 240), status, fps=29.97, streams=None)
    assert card["dropped"] == 1 + 2 + 4  # sensor, late, before_lock (slot repeats are not slots)
    assert card["fps"] == 29.97 and "stream" not in card
    offline = camera_card(CameraInfo("cam2", "pi2", "client", 320, 240), status, fps=0.0, streams={})
    assert offline == {
        "name": "cam2",
        "role": "client",
        "host": "pi2",
        "online": False,
        "error": "heartbeat timeout",
        "stream": None,
    }
