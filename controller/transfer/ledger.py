"""`transfer.json`: what the desktop holds of each camera's raw files, verified against the Pi.

Per camera and file: size and SHA-256 as computed on the Pi, where the bytes came from (stream,
Pi, or both), when it was verified, and whether the Pi's copy was deleted afterwards; `pulls` is
the history: every pull's record appended, never rewritten (`record_pull`). The delete-session
feature and `delete_pi_copy` ask `footage_safe` first, which reads the files as they are now.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from controller.transfer.transports import sha256_file
from syncrig_agent.contract.formats import read_manifest_data
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import RawFolder, SessionLayout

_lock = threading.Lock()


def raw_names(camera: str) -> list[str]:
    # The small tables first: gap fill needs the Pi's frame table before it assembles the video.
    names = RawFolder.file_names(camera)
    return [names["frames"], names["pts"], names["h264"]]


def read_ledger(session_dir: Path) -> dict:
    path = SessionLayout(session_dir).transfer_ledger
    if not path.exists():
        return {"cameras": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def record_pull(session_dir: Path, camera: str, pull: dict) -> dict:
    """Append one pull's record to the camera's history (`pulls`, never rewritten) and make its
    newly verified files current. A file found already present keeps the record of how it got
    here (source, gap fill, verified_at); the pull only adds when it was seen intact again."""
    session_dir = Path(session_dir)
    with _lock:
        ledger = read_ledger(session_dir)
        entry = ledger["cameras"].setdefault(camera, {"files": {}})
        now = time.time()
        entry.setdefault("pulls", []).append({"at": now, **pull})
        for name, record in (pull.get("files") or {}).items():
            current = entry["files"].get(name)
            if record.get("source", "").startswith("already present") and current is not None:
                current["reverified_at"] = now
            else:
                entry["files"][name] = record
        for key in ("pi", "reconciled"):
            if key in pull:
                entry[key] = pull[key]
        if pull.get("error"):
            entry["error"] = pull["error"]
        else:
            entry.pop("error", None)
        ledger["updated"] = now
        write_json_atomic(SessionLayout(session_dir).transfer_ledger, ledger)
        return ledger


def update_ledger(session_dir: Path, camera: str, changes: dict) -> dict:
    """Merge `changes` into the camera's entry; atomic replace (a crash leaves old or new)."""
    session_dir = Path(session_dir)
    with _lock:
        ledger = read_ledger(session_dir)
        entry = ledger["cameras"].setdefault(camera, {"files": {}})
        for key, value in changes.items():
            if key == "files":
                entry["files"].update(value)
            else:
                entry[key] = value
        ledger["updated"] = time.time()
        write_json_atomic(SessionLayout(session_dir).transfer_ledger, ledger)
        return ledger


def _session_cameras(session_dir: Path, ledger: dict) -> list[str]:
    if SessionLayout(session_dir).manifest.exists():
        # Only the camera names: a partial manifest (an interrupted recording) still names them.
        return [c["name"] for c in read_manifest_data(session_dir).get("cameras", [])]
    return sorted(ledger["cameras"])


def camera_safe(session_dir: Path, camera: str, rehash: bool = True, ledger: dict | None = None) -> list[str]:
    """Problems that make this camera's desktop copy unsafe to rely on (empty list = safe)."""
    ledger = ledger if ledger is not None else read_ledger(session_dir)
    entry = ledger["cameras"].get(camera)
    if entry is None:
        return ["never pulled and verified"]
    problems = []
    raw = SessionLayout(session_dir).raw
    for name in raw_names(camera):
        record = entry["files"].get(name)
        path = raw.path / name
        if record is None or not record.get("verified"):
            problems.append(f"{name}: not verified against the Pi")
            continue
        if not path.exists():
            problems.append(f"{name}: missing on the desktop")
            continue
        if path.stat().st_size != record["size"]:
            problems.append(f"{name}: size changed since verification")
        elif rehash and sha256_file(path) != record["sha256"]:
            problems.append(f"{name}: contents changed since verification (SHA-256 differs)")
    return problems


def footage_safe(session_dir: Path | str, rehash: bool = True) -> dict:
    """Is every camera's raw footage of this session verified on the desktop? JSON-serialisable:
    {"safe": bool, "cameras": {cam: {"safe": bool, "problems": [...]}}}. `rehash` re-reads every
    file (slow, but it is what a delete should rely on)."""
    session_dir = Path(session_dir)
    ledger = read_ledger(session_dir)
    cameras = _session_cameras(session_dir, ledger)
    result = {}
    for cam in cameras:
        problems = camera_safe(session_dir, cam, rehash, ledger)
        result[cam] = {"safe": not problems, "problems": problems}
    return {"safe": bool(cameras) and all(r["safe"] for r in result.values()), "cameras": result}
