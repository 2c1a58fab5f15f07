"""The fault matrix (benchmarks/fault_matrix.py): a part of the rig killed at a random instant of a
recording costs no session and no frame. CI runs a few faults once each (instants drawn fresh, the
seed in the failure message); the slow variant runs every fault twice."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fault_matrix import run_matrix, summarize  # noqa: E402
from fault_runs import FAULTS  # noqa: E402


def _check(matrix: dict) -> None:
    seed = matrix["seed"]
    for key, runs in matrix["results"].items():
        for run in runs:
            assert run.usable, f"seed {seed}: {key} at {run.instant_s} s: {run.problems}"
            assert run.frames_lost == 0 and run.stated, f"seed {seed}: {run}"
    for row in summarize(matrix):
        assert row["usable"] == row["runs"], (seed, row)


def test_a_few_faults_cost_no_session_and_no_frame(tmp_path: Path) -> None:
    # cam0 killed (STOP cannot reach it: every camera's files collected anyway) and a receiver's
    # FFmpeg killed; a killed client is tests/test_lost_camera.py's.
    faults = ["cam0-agent:KILL", "ffmpeg:KILL"]
    matrix = run_matrix(faults, 1, 2.0, secrets.randbits(32), tmp_path, outputs=False)
    _check(matrix)
    assert all(r.stop_s < 15.0 for runs in matrix["results"].values() for r in runs), matrix


@pytest.mark.slow
def test_every_fault_twice_costs_no_session_and_no_frame(tmp_path: Path) -> None:
    matrix = run_matrix(list(FAULTS), 2, 4.0, secrets.randbits(32), tmp_path)
    for key, why in matrix["skipped"].items():
        print(f"{key}: {why}")  # the netns link fault needs root
    _check(matrix)
