"""A `syncrig` command whose stdout reader closes early (`syncrig board ... | head -1`) ends quietly:
exit status 1 as in the Python docs' SIGPIPE recipe, no traceback on stderr, and its work still done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m controller ARGS` with stdout a pipe whose reader has already gone (the earliest a
    reader like `head` can close), so every write the command makes meets a broken pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "controller", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    board = tmp_path / "board.png"
    result = run_into_closed_pipe("board", "--out", str(board), "--squares", "4x3", "--dpi", "50")
    assert "Traceback" not in result.stderr, result.stderr
    assert "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert board.is_file()  # the command did its work; only its report had nowhere to go


def test_the_same_command_into_an_open_pipe_succeeds(tmp_path: Path) -> None:
    board = tmp_path / "board.png"
    result = subprocess.run(
        [sys.executable, "-m", "controller", "board", "--out", str(board), "--squares", "4x3", "--dpi", "50"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote "), result.stdout


def test_a_closed_pipe_after_a_json_report_is_quiet_too(tmp_path: Path) -> None:
    result = run_into_closed_pipe("footage-check", str(tmp_path))
    assert "Traceback" not in result.stderr, result.stderr
    assert "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode == 1
