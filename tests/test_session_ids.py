"""Session ids are never issued twice: not in the same second, not across controller restarts
(separate processes), not after a session directory was deleted, not when the counter file is
lost, not by two controllers allocating at once."""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from controller.session.create import COUNTER_FILE, create_session_dir
from syncrig_agent.contract.ids import InvalidName

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _allocate(root: str, n: int, queue) -> None:
    # A fresh process = a controller started anew: only what is on disk carries over.
    queue.put([create_session_dir(root, "m1", now=NOW)[0] for _ in range(n)])


def test_same_second_same_subject_gives_distinct_ids(tmp_path: Path) -> None:
    ids = [create_session_dir(tmp_path, "m1", "proj", now=NOW)[0] for _ in range(5)]
    assert len(set(ids)) == 5
    assert ids[0] == "20260102-030405-0001_proj_m1" and ids[4] == "20260102-030405-0005_proj_m1"


def test_deleted_session_and_lost_counter_do_not_cause_reuse(tmp_path: Path) -> None:
    first, path = create_session_dir(tmp_path, now=NOW)
    shutil.rmtree(path)  # the user deleted it (and maybe it still exists on the Pis)
    second, _ = create_session_dir(tmp_path, now=NOW)
    assert second != first
    (tmp_path / COUNTER_FILE).unlink()  # even the counter is gone: the issued log still knows
    third, _ = create_session_dir(tmp_path, now=NOW)
    assert third not in (first, second)
    for f in tmp_path.glob(".syncrig-sessions-issued"):
        f.unlink()  # and the log too: the remaining directory names still know
    (tmp_path / COUNTER_FILE).unlink()
    fourth, _ = create_session_dir(tmp_path, now=NOW)
    assert fourth not in (first, second, third)


def test_concurrent_controller_processes_never_collide(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(str(tmp_path), 8, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=60)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(ids) == 32 and len(set(ids)) == 32
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 32


def test_bad_subject_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        create_session_dir(tmp_path / "root", "../evil")
    assert not (tmp_path / "root").exists()
