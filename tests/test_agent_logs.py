"""Agents' recent log lines over the control link: cam0 answers for itself and, over its existing
links, for each client; bad requests get errors that name the field or the camera."""

from __future__ import annotations

import json
import logging

import pytest

from syncrig_agent.contract.protocol import RemoteError
from syncrig_agent.diagnostics.log_ring import MAX_REPLY_BYTES, LogRing


def test_ring_is_bounded_and_splits_lines() -> None:
    ring = LogRing(capacity=5)
    ring.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test_agent_logs.ring")
    logger.propagate = False
    logger.addHandler(ring)
    try:
        for i in range(10):
            logger.warning("line %d", i)
        logger.warning("two\nlines")
        logger.warning("x" * 5000)
    finally:
        logger.removeHandler(ring)
    lines = ring.recent(100)
    assert lines[:4] == ["line 8", "line 9", "two", "lines"] and len(lines) == 5
    assert len(lines[-1]) <= 1001
    assert ring.recent(2) == ["lines", lines[-1]]
    big = LogRing(capacity=2000)
    for _ in range(2000):
        big._lines.append("y" * 999)
    kept = big.recent(2000)
    assert 500 < len(kept) < 2000 and len(json.dumps(kept)) <= MAX_REPLY_BYTES  # fits one message


def test_logs_of_cam0_and_of_a_client(make_rig) -> None:
    rig = make_rig(3)
    with rig.link() as link:
        own = link.request({"type": "logs"})
        assert own["camera"] == "cam0"
        assert any("serving controllers" in line for line in own["lines"]), own["lines"]
        assert len(link.request({"type": "logs", "camera": "cam0", "lines": 1})["lines"]) == 1
        for name in ("cam1", "cam2"):
            reply = link.request({"type": "logs", "camera": name, "lines": 50})
            assert reply["camera"] == name
            lines = reply["lines"]
            assert 0 < len(lines) <= 50
            assert any("connected to server" in line for line in lines), lines
            assert all(isinstance(line, str) and "\n" not in line for line in lines)
        three = link.request({"type": "logs", "camera": "cam1", "lines": 3})["lines"]
        assert 0 < len(three) <= 3


def test_bad_logs_requests(make_rig) -> None:
    rig = make_rig(2)
    with rig.link() as link:
        with pytest.raises(RemoteError) as err:
            link.request({"type": "logs", "camera": "cam7"})
        assert err.value.code == "unknown_camera"
        assert "cam7" in str(err.value) and "cam0, cam1" in str(err.value)
        for bad in (0, 2001, "10", True, 2.5, None):
            with pytest.raises(RemoteError) as err:
                link.request({"type": "logs", "lines": bad})
            assert err.value.code == "bad_field" and "'lines'" in str(err.value), bad
        for bad in ("../cam1", "", 7):
            with pytest.raises(RemoteError) as err:
                link.request({"type": "logs", "camera": bad})
            assert err.value.code == "bad_field" and "'camera'" in str(err.value), bad
        # The link survives every refusal, and a stopped client is reported as not connected.
        rig.terminate("cam1")
        with pytest.raises(RemoteError) as err:
            link.request({"type": "logs", "camera": "cam1"}, timeout=10)
        assert err.value.code in ("unknown_camera", "camera_unreachable") and "cam1" in str(err.value)
        assert link.request({"type": "logs", "lines": 2000})["camera"] == "cam0"


def test_a_restarted_agent_starts_with_its_earlier_runs_lines(tmp_path) -> None:  # noqa: ANN001
    from syncrig_agent.diagnostics.log_ring import earlier_run_lines

    earlier = tmp_path / "cam1.log"
    earlier.write_text("run 1 started\n\nrun 1: camera crashed\n" + "".join(f"x{i}\n" for i in range(10)))
    lines = earlier_run_lines(earlier, lines=11)
    assert (
        lines[0] == "run 1: camera crashed" and lines[-1] == "x9" and len(lines) == 11
    )  # blank lines dropped
    assert earlier_run_lines(tmp_path / "missing.log") == []  # never a reason not to start
    ring = LogRing(capacity=20)
    ring.seed(lines)
    ring.setFormatter(logging.Formatter("%(message)s"))
    ring.emit(logging.LogRecord("agent", logging.INFO, __file__, 1, "run 2 started", None, None))
    recent = ring.recent(20)
    assert recent[:11] == lines and "lines above are from its earlier runs" in recent[11]
    assert recent[12] == "run 2 started"
    empty = LogRing(capacity=5)
    empty.seed([])
    assert empty.recent(5) == []  # a first start has no marker
