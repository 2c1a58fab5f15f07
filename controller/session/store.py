"""The desktop's sessions: list them, describe one, say whether its footage is safe here, and (only
then, and only when confirmed) free the cameras' copies.

Session ids from a URL are validated and resolved inside the sessions root, so no request can name a
path outside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.rig.cameras import CameraInfo
from controller.transfer.ledger import footage_safe, read_ledger
from controller.transfer.pull import PullError, TransportFactory, delete_pi_copy
from controller.transfer.transports import TransportError
from syncrig_agent.contract.formats import read_frame_table, read_manifest_data, read_pts
from syncrig_agent.contract.ids import InvalidName, validate_session_id
from syncrig_agent.contract.layout import SessionLayout


class SessionNotFound(LookupError):
    pass


class UnsafeToDelete(RuntimeError):
    """The desktop copy is not (yet) complete and verified: the cameras' copies must stay."""


def session_path(root: Path, session_id: str) -> Path:
    try:
        validate_session_id(session_id)
    except InvalidName as exc:
        raise SessionNotFound(str(exc)) from None
    root = root.resolve()
    path = (root / session_id).resolve()
    if path.parent != root or not SessionLayout(path).manifest.is_file():
        raise SessionNotFound(f"no session {session_id!r}")
    return path


def list_sessions(root: Path, limit: int | None = None) -> list[dict]:
    """Newest first; a directory whose manifest cannot be read is listed with its error."""
    root = Path(root)
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
        if not path.is_dir() or path.name.startswith("."):
            continue
        if not SessionLayout(path).manifest.is_file():
            continue  # being recorded, or not a session
        try:
            # Fields unchecked: a partial manifest still lists what it has.
            m = read_manifest_data(path)
        except (OSError, ValueError) as exc:
            entries.append({"id": path.name, "error": f"unreadable manifest: {exc}"})
            continue
        cams = m.get("cameras") or []
        duration = None
        if m.get("stop_ns") and m.get("t0_ns"):
            duration = (m["stop_ns"] - m["t0_ns"]) / 1e9
        entries.append(
            {
                "id": m.get("id", path.name),
                "subject": m.get("subject"),
                "project": m.get("project"),
                "created": m.get("created"),
                "fps": m.get("fps"),
                "duration_s": duration,
                "cameras": [c.get("name") for c in cams],
                "frames": {c.get("name"): c.get("frames") for c in cams},
                "dropped": sum(int(c.get("dropped") or 0) for c in cams),
                "synced": SessionLayout(path).synced.report.is_file(),
                "notes": m.get("notes") or [],
            }
        )
        if limit is not None and len(entries) >= limit:
            break
    return entries


@dataclass
class CameraCopyCheck:
    camera: str
    ok: bool
    frames_expected: int
    frames_h264_pts: int | None
    frames_table: int | None
    message: str


def check_desktop_copy(path: Path) -> list[CameraCopyCheck]:
    """Each camera's raw files are here and agree with each other and with the manifest."""
    manifest = read_manifest_data(path)
    raw = SessionLayout(path).raw
    out = []
    for cam in manifest.get("cameras") or []:
        name = cam["name"]
        expected = int(cam.get("frames") or 0)
        problems = []
        pts_n = table_n = None
        h264 = raw.video(name)
        if not h264.is_file() or (expected and h264.stat().st_size == 0):
            problems.append("no .h264")
        try:
            pts_n = len(read_pts(raw.pts(name)))
        except (OSError, ValueError) as exc:
            problems.append(f".pts unreadable ({exc})")
        try:
            table_n = int(read_frame_table(raw.frames(name))["frame"].size)
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f".frames.csv unreadable ({exc})")
        if pts_n is not None and pts_n != expected:
            problems.append(f".pts has {pts_n} frames, the camera recorded {expected}")
        if table_n is not None and table_n != expected:
            problems.append(f".frames.csv has {table_n} frames, the camera recorded {expected}")
        out.append(
            CameraCopyCheck(
                name, not problems, expected, pts_n, table_n, "; ".join(problems) or "complete on the desktop"
            )
        )
    return out


def session_details(root: Path, session_id: str, cameras: list[CameraInfo]) -> dict:
    path = session_path(root, session_id)
    manifest = read_manifest_data(path)
    files = [
        {"path": str(f.relative_to(path)), "bytes": f.stat().st_size}
        for f in sorted(path.rglob("*"))
        if f.is_file() and not f.name.startswith(".")
    ]
    ledger = read_ledger(path)
    footage = footage_safe(path, rehash=False)  # sizes against the ledger; a delete re-hashes
    on_cameras: dict[str, bool | None] = {}
    for cam in cameras:
        if (ledger["cameras"].get(cam.name) or {}).get("deleted_from_pi"):
            on_cameras[cam.name] = False
        elif cam.data_dir is not None:
            on_cameras[cam.name] = (cam.data_dir / session_id).is_dir()
        else:
            on_cameras[cam.name] = None  # on the Pi; not asked (that needs SSH)
    t0, stop = manifest.get("t0_ns"), manifest.get("stop_ns")
    return {
        "id": session_id,
        "path": str(path),
        "duration_s": (stop - t0) / 1e9 if t0 and stop else None,
        "manifest": manifest,
        "footage_summary": footage_summary(footage, on_cameras),
        "faults": recording_faults(manifest),
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "desktop_copy": [c.__dict__ for c in check_desktop_copy(path)],
        "transfer": ledger["cameras"],
        "footage": footage,
        "safe_on_desktop": footage["safe"],
        "on_cameras": on_cameras,
    }


def footage_summary(footage: dict, on_cameras: dict[str, bool | None]) -> str:
    """The session's footage in words, from the facts of now (the desktop files against the
    ledger, the cameras' copies), never from a stored flag."""
    if not footage["safe"]:
        bad = [f"{cam}: {'; '.join(v['problems'])}" for cam, v in footage["cameras"].items() if not v["safe"]]
        return "NOT verified on the desktop: " + (" · ".join(bad) or "no camera pulled")
    deleted = sorted(cam for cam, there in on_cameras.items() if there is False)
    if deleted:
        return (
            f"on the desktop only: camera copies deleted ({', '.join(deleted)}); the desktop files are "
            "the ones verified against the cameras"
        )
    return "verified on the desktop (the cameras still hold their copies)"


def recording_faults(manifest: dict) -> list[str]:
    """Each camera lost during the recording, when and why, in words (the manifest's `lost`),
    then the recording's notes (a receiver restarted, a controller re-attached, cameras left out)."""
    out = []
    for cam in manifest.get("cameras") or []:
        lost = cam.get("lost")
        if lost:
            out.append(
                f"{cam['name']} lost: {lost.get('reason')}; its last frame {lost.get('at_s', 0):.2f} s into "
                f"the recording; its {cam.get('frames')} frames are kept"
            )
    out += [f"{name} not recorded: {why}" for name, why in (manifest.get("excluded") or {}).items()]
    return out + list(manifest.get("notes") or [])


def ensure_safe_to_delete(root: Path, session_id: str, confirm: str, rehash: bool = True) -> Path:
    """Raise UnsafeToDelete unless the user confirmed with the session id and every camera's
    desktop copy is verified against its Pi (SHA-256, re-read now; `rehash=False` compares sizes
    with the ledger only, for an immediate answer to a request)."""
    path = session_path(root, session_id)
    if confirm != session_id:
        raise UnsafeToDelete("type the session id to confirm; nothing deleted")
    footage = footage_safe(path, rehash=rehash)
    bad = {cam: v["problems"] for cam, v in footage["cameras"].items() if not v["safe"]}
    if bad or not footage["safe"]:
        raise UnsafeToDelete(
            "the desktop copy is not verified, nothing deleted: "
            + "; ".join(f"{cam}: {', '.join(problems)}" for cam, problems in bad.items())
        )
    return path


def delete_camera_copies(
    root: Path, session_id: str, sources: dict[str, TransportFactory], confirm: str
) -> dict:
    """Free the cameras' storage for a session whose desktop copy is verified.

    `confirm` must repeat the session id (the page asks the user to type it). Each camera's copy
    is deleted through its transport only if the Pi still holds exactly the verified files."""
    path = ensure_safe_to_delete(root, session_id, confirm)
    results: dict[str, str] = {}
    for cam in read_manifest_data(path).get("cameras") or []:
        name = cam["name"]
        if name not in sources:
            results[name] = "no way to reach this camera; not deleted"
            continue
        try:
            with sources[name]() as transport:
                deleted = delete_pi_copy(path, name, transport, confirm=True)
            results[name] = f"deleted {len(deleted['deleted'])} file(s)"
        except (PullError, TransportError, OSError) as exc:
            results[name] = f"not deleted: {exc}"
    return {"session_id": session_id, "cameras": results}
