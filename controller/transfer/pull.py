"""Pull a session's raw files from every Pi: resumable, verified, in parallel, with progress.

For each camera, in order: `<cam>.frames.csv`, `<cam>.pts`, `<cam>.h264` from
`<pi data dir>/<session id>/raw/`. Each file is fetched into `raw/<name>.part` (an interrupted
pull resumes from the bytes already there), hashed while it is written, compared with the size and
SHA-256 computed on the Pi, and only then linked to its final name (link: never replaces an
existing file). A mismatch throws the partial copy away and fetches again. The `.h264` is first
assembled from the live stream with only the gaps read from the Pi (gapfill.py); if that does not
verify, the normal download takes over. Nothing is ever deleted on the Pi here (see
`delete_pi_copy`, which requires the verified desktop copy).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from controller.progress import Progress
from controller.transfer.gapfill import assemble_from_stream
from controller.transfer.ledger import camera_safe, raw_names, read_ledger, record_pull, update_ledger
from controller.transfer.reconcile import reconcile_camera
from controller.transfer.transports import HASH_CHUNK, Transport, TransportError, sha256_file
from syncrig_agent.contract.formats import read_manifest_data
from syncrig_agent.contract.ids import validate_camera_name, validate_session_id
from syncrig_agent.contract.layout import RawFolder, SessionLayout

log = logging.getLogger(__name__)

TransportFactory = Callable[[], Transport]
MAX_ATTEMPTS = 3


class PullError(RuntimeError):
    pass


class _Progress:
    """Bytes done over bytes known, across the parallel workers."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()
        self._last = 0.0

    def add_total(self, n: int) -> None:
        with self._lock:
            self.total += n

    def advance(self, n: int, message: str) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.callback is None or (now - self._last < 0.1 and self.done < self.total):
                return
            self._last = now
            frac = self.done / self.total if self.total else 0.0
        self.callback(min(1.0, frac), message)


def _link_final(part: Path, final: Path) -> None:
    os.link(part, final)  # FileExistsError rather than replacing anything
    part.unlink()


def download_file(
    transport: Transport,
    rel: str,
    final: Path,
    remote_size: int,
    remote_sha: str | Callable[[], str],
    on_bytes: Callable[[int], None] | None = None,
    chunk: int = HASH_CHUNK,
) -> dict:
    """Resumable, verified download of one file to `final`; returns what happened.
    `remote_sha` may be a pending hash (Transport.start_sha256), collected when needed."""
    part = final.with_name(final.name + ".part")
    attempts = 0
    resumed_from = 0
    while True:
        attempts += 1
        digest = hashlib.sha256()
        have = part.stat().st_size if part.exists() else 0
        if have > remote_size:
            part.unlink()  # our own partial copy, longer than the Pi's file: not resumable
            have = 0
        if have:
            resumed_from = max(resumed_from, have)
            with open(part, "rb") as fh:
                while block := fh.read(HASH_CHUNK):
                    digest.update(block)
            if on_bytes is not None:
                on_bytes(have)
        with open(part, "ab") as out:
            if have < remote_size:
                reader = transport.open(rel, have, remote_size - have)
                try:
                    remaining = remote_size - have
                    while remaining:
                        block = reader.read(min(chunk, remaining))
                        if not block:
                            raise TransportError(
                                f"{rel}: the Pi's file ended early ({remaining} bytes short)"
                            )
                        out.write(block)
                        digest.update(block)
                        remaining -= len(block)
                        if on_bytes is not None:
                            on_bytes(len(block))
                finally:
                    reader.close()
            out.flush()
            os.fsync(out.fileno())
        if not isinstance(remote_sha, str):
            remote_sha = remote_sha()
        if digest.hexdigest() == remote_sha:
            _link_final(part, final)
            return {"source": "pi", "attempts": attempts, "resumed_from": resumed_from, "sha256": remote_sha}
        log.warning("%s: SHA-256 mismatch after download (attempt %d); fetching again", rel, attempts)
        part.unlink()
        if on_bytes is not None:
            on_bytes(-remote_size)
        if attempts >= MAX_ATTEMPTS:
            raise PullError(f"{rel}: checksum still wrong after {attempts} downloads")


def pull_camera(
    session_dir: Path,
    session_id: str,
    camera: str,
    transport: Transport,
    progress: _Progress | None = None,
    use_stream: bool = True,
    t0_ns: int | None = None,
    settle_s: float = 0.0,
) -> dict:
    """Pull and verify one camera's raw files; returns its ledger entry. A camera whose agent
    never closed the recording is reconciled from the Pi's copy and the stream (reconcile.py);
    `t0_ns` (else the manifest's) rebuilds its `.pts`. `settle_s`: how long to wait for a camera
    that is still writing (cut off from cam0, it records until its heartbeat timeout)."""
    raw = SessionLayout(session_dir).raw
    raw.path.mkdir(exist_ok=True)
    pi = SessionLayout(session_id)  # the Pi's copy, relative to its data directory
    remote = {name: (pi.raw.path / name).as_posix() for name in raw_names(camera)}
    capture_report = pi.agent_capture_report(camera).as_posix()
    if settle_s > 0:
        _wait_until_settled(transport, remote[RawFolder.file_names(camera)["h264"]], capture_report, settle_s)
    sizes: dict[str, int] = {}
    for name, rel in remote.items():
        size = transport.size(rel)
        if size is None:
            kept = _kept_after_delete(session_dir, camera)
            if kept is not None:
                return kept
            raise PullError(f"{camera}: {rel} does not exist on {transport.label}")
        sizes[name] = size
    if progress is not None:
        progress.add_total(sum(sizes.values()))

    def on_bytes(n: int) -> None:
        if progress is not None:
            progress.advance(n, f"{camera}: pulling")

    entry: dict = {"files": {}}
    # The Pi hashes every file while we download (concurrent commands), not before.
    pending = {name: transport.start_sha256(rel) for name, rel in remote.items()}
    if transport.size(capture_report) is None and not raw.video(camera).exists():
        # No capture report: the agent never closed this recording (killed, frozen, cut off).
        return _pull_lost_camera(session_dir, camera, transport, remote, sizes, pending, on_bytes, t0_ns)
    for name, rel in remote.items():
        final = raw.path / name
        if final.exists():
            remote_sha = pending[name]()
            known = (read_ledger(session_dir)["cameras"].get(camera) or {}).get("files", {}).get(name) or {}
            if "pi" in known and known["pi"]["sha256"] == remote_sha and _matches_record(final, known):
                # A reconciled camera's desktop file is whole frames of the Pi's torn one.
                on_bytes(sizes[name])
                entry["files"][name] = {**known, "source": "already present (reconciled)"}
                continue
            if final.stat().st_size == sizes[name] and sha256_file(final) == remote_sha:
                on_bytes(sizes[name])
                entry["files"][name] = {
                    "size": sizes[name],
                    "sha256": remote_sha,
                    "verified": True,
                    "verified_at": time.time(),
                    "source": "already present",
                }
                continue
            raise PullError(f"{final} exists and differs from the Pi's copy; refusing to overwrite it")
        info = None
        if use_stream and name == RawFolder.file_names(camera)["h264"]:
            info = _try_stream(
                session_dir, camera, transport, rel, final, sizes[name], pending[name], on_bytes
            )
        if info is None:
            info = download_file(transport, rel, final, sizes[name], pending[name], on_bytes)
        record = {"size": sizes[name], "sha256": info.pop("sha256")}
        entry["files"][name] = {**record, **info, "verified": True, "verified_at": time.time()}
    if transport.size(capture_report) is not None and not raw.capture_report(camera).exists():
        # Informative (the manifest already has the summary): copied, not part of the verified set.
        with transport.open(capture_report) as src, open(raw.capture_report(camera), "xb") as dst:
            dst.write(src.read())
    entry["ttl"] = _pull_ttl(session_dir, pi, camera, transport)
    entry["pi"] = transport.label
    record_pull(session_dir, camera, entry)
    return entry


SETTLED_AFTER_S = 1.5  # a video that has not grown for this long is no longer being written


def _wait_until_settled(transport: Transport, video: str, capture_report: str, limit_s: float) -> None:
    """Until the agent closed the recording (its capture report exists) or its video stopped
    growing (the agent died or froze), at most `limit_s`."""
    deadline = time.monotonic() + limit_s
    last, since = transport.size(video), time.monotonic()
    while time.monotonic() < deadline and transport.size(capture_report) is None:
        time.sleep(0.25)
        size = transport.size(video)
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= SETTLED_AFTER_S:
            return


def _matches_record(path: Path, record: dict) -> bool:
    """The desktop file is exactly the one the ledger verified (size and SHA-256, read now)."""
    return path.stat().st_size == record.get("size") and sha256_file(path) == record.get("sha256")


def _kept_after_delete(session_dir: Path, camera: str) -> dict | None:
    """A re-pull after "delete camera copies": the Pi's files are gone on purpose; if the desktop
    copy is still the verified one (re-hashed now), the pull is that fact, not a failure."""
    entry = read_ledger(session_dir)["cameras"].get(camera) or {}
    if not entry.get("deleted_from_pi") or camera_safe(session_dir, camera, rehash=True):
        return None
    now = time.time()
    files = {
        name: {**entry["files"][name], "source": "already present (camera copy deleted)", "verified_at": now}
        for name in raw_names(camera)
    }
    pull = {"files": files, "pi": "camera copy deleted"}
    record_pull(session_dir, camera, pull)
    return pull


def _pull_lost_camera(
    session_dir: Path,
    camera: str,
    transport: Transport,
    remote: dict[str, str],
    sizes: dict[str, int],
    pending: dict[str, Callable[[], str]],
    on_bytes: Callable[[int], None],
    t0_ns: int | None,
) -> dict:
    """Verified copies of the Pi's (torn) files, then whole frames from them and the stream into
    raw/. The ledger keeps the Pi's size + SHA-256 (what a delete compares) beside the desktop's."""
    raw = SessionLayout(session_dir).raw
    if t0_ns is None:
        try:
            t0_ns = read_manifest_data(session_dir).get("t0_ns")
        except (OSError, ValueError):
            t0_ns = None
    if t0_ns is None:
        raise PullError(f"{camera}: its recording was not closed and T0 is unknown (no manifest)")
    copies: dict[str, Path] = {}
    pi_records: dict[str, dict] = {}
    try:
        for name, rel in remote.items():
            copy = raw.path / f"{name}.pi-copy"
            copy.unlink(missing_ok=True)  # ours, from an interrupted attempt
            info = download_file(transport, rel, copy, sizes[name], pending[name], on_bytes)
            copies[name] = copy
            pi_records[name] = {"size": sizes[name], "sha256": info["sha256"]}
        names = RawFolder.file_names(camera)
        by_kind = {kind: copies[names[kind]] for kind in ("h264", "frames")}
        result = reconcile_camera(session_dir, camera, by_kind, int(t0_ns))
    finally:
        for copy in copies.values():
            copy.unlink(missing_ok=True)
    log.warning(
        "%s: recording was not closed by its agent; kept %d whole frames (%d from the Pi, %d from the "
        "stream), cut %d rows without bytes and %d bytes without a row",
        camera,
        result.frames,
        result.frames_from_pi,
        result.frames_from_stream,
        result.rows_without_bytes,
        result.pi_bytes_cut,
    )
    source = (
        "stream+pi"
        if result.frames_from_stream and result.frames_from_pi
        else ("stream" if result.frames_from_stream else "pi")
    )
    now = time.time()
    files = {
        name: {
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
            "source": source if name == names["h264"] else "rebuilt from the frame rows",
            "verified": True,
            "verified_at": now,
            "pi": pi_records[name],
        }
        for name, path in ((n, raw.path / n) for n in remote)
    }
    entry = {"files": files, "pi": transport.label, "reconciled": result.as_dict()}
    record_pull(session_dir, camera, entry)
    return entry


def _pull_ttl(session_dir: Path, pi: SessionLayout, camera: str, transport: Transport) -> dict:
    """The camera's TTL tables (small), copied whole and checked against the Pi's SHA-256."""
    local = SessionLayout(session_dir).ttl
    pulled = {}
    for kind, path in local.files(camera).items():
        remote = (pi.ttl.path / path.name).as_posix()
        size = transport.size(remote)
        if size is None:
            continue
        sha = transport.sha256(remote)
        if path.exists():
            if sha256_file(path) != sha:
                raise PullError(f"{path} exists and differs from the Pi's copy; refusing to overwrite it")
        else:
            local.path.mkdir(exist_ok=True)
            part = path.with_name(path.name + ".part")
            with transport.open(remote) as src, open(part, "wb") as dst:
                dst.write(src.read())
            if sha256_file(part) != sha:
                part.unlink()
                raise PullError(f"{camera}: {remote} changed while it was copied (SHA-256 differs)")
            part.rename(path)
        pulled[kind] = {"file": path.name, "size": size, "sha256": sha}
    return pulled


def _try_stream(
    session_dir: Path,
    camera: str,
    transport: Transport,
    rel: str,
    final: Path,
    size: int,
    remote_sha: Callable[[], str],
    on_bytes: Callable[[int], None],
) -> dict | None:
    """Assemble from the stream copy + the Pi's missing ranges; None if unusable (then download)."""
    part = final.with_name(f"{final.name}.stream-part")
    part.unlink(missing_ok=True)  # ours from an earlier attempt; cheap to rebuild from the spool
    done = 0

    def counted(n: int) -> None:
        nonlocal done
        done += n
        on_bytes(n)

    try:
        result = assemble_from_stream(
            session_dir, camera, transport, rel, SessionLayout(session_dir).raw.frames(camera), part, counted
        )
    except (OSError, ValueError, TransportError) as exc:
        log.warning("%s: gap fill from the stream failed (%s); downloading the Pi's copy", camera, exc)
        result = None
    if result is not None:
        sha = remote_sha()
        if result.size == size and result.sha256 == sha:
            _link_final(part, final)
            source = "stream+pi" if result.frames_from_pi else "stream"
            return {"source": source, "sha256": sha, "gap_fill": result.as_dict()}
        log.warning("%s: stream copy does not match the Pi's (SHA-256); downloading instead", camera)
    part.unlink(missing_ok=True)
    on_bytes(-done)
    return None


def pull_session(
    session_dir: Path | str,
    cameras: dict[str, TransportFactory],
    progress: Progress | None = None,
    workers: int = 2,
    use_stream: bool = True,
    t0_ns: int | None = None,
    settle_s: float = 0.0,
) -> dict:
    """Pull every camera's raw files (in parallel); JSON-serialisable result per camera.

    `cameras` maps camera names to a callable opening that camera's transport (one per worker).
    A camera that fails is reported with its error; the others are still pulled."""
    session_dir = Path(session_dir)
    session_id = validate_session_id(session_dir.name)
    for name in cameras:
        validate_camera_name(name)
    tracker = _Progress(progress)
    started = time.monotonic()

    def one(camera: str) -> dict:
        try:
            with cameras[camera]() as transport:
                entry = pull_camera(
                    session_dir, session_id, camera, transport, tracker, use_stream, t0_ns, settle_s
                )
            return {"ok": True, **entry}
        except (PullError, TransportError, OSError, ValueError) as exc:
            log.error("pull %s: %s", camera, exc)
            record_pull(session_dir, camera, {"error": str(exc)})
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # e.g. paramiko.SSHException: one camera's failure, not the pull's
            log.exception("pull %s failed", camera)
            message = f"{type(exc).__name__}: {exc}"
            record_pull(session_dir, camera, {"error": message})
            return {"ok": False, "error": message}

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(cameras)))) as pool:
        results = dict(zip(cameras, pool.map(one, cameras), strict=False))
    if progress is not None:
        progress(1.0, "pulled")
    total = sum(f["size"] for r in results.values() if r.get("ok") for f in r["files"].values())
    elapsed = time.monotonic() - started
    return {
        "session_id": session_id,
        "ok": all(r["ok"] for r in results.values()),
        "cameras": results,
        "bytes": total,
        "seconds": round(elapsed, 3),
    }


def delete_pi_copy(session_dir: Path | str, camera: str, transport: Transport, confirm: bool = False) -> dict:
    """Delete one camera's recording of this session from its Pi — only with `confirm=True` and
    only if the desktop copy is verified now (re-hashed) and the Pi still holds exactly what was
    verified. Raises PullError otherwise and deletes nothing."""
    session_dir = Path(session_dir)
    session_id = validate_session_id(session_dir.name)
    validate_camera_name(camera)
    if not confirm:
        raise PullError("deleting a Pi's recording needs an explicit confirmation")
    problems = camera_safe(session_dir, camera, rehash=True)
    if problems:
        raise PullError(f"{camera}: desktop copy not verified, nothing deleted: {'; '.join(problems)}")
    files = read_ledger(session_dir)["cameras"][camera]["files"]
    pi = SessionLayout(session_id)  # the Pi's copy, relative to its data directory
    for name in raw_names(camera):
        rel = (pi.raw.path / name).as_posix()
        if transport.size(rel) is None:
            continue
        # A reconciled camera's desktop file differs from the Pi's: compare with what the Pi held.
        if transport.sha256(rel) != files[name].get("pi", files[name])["sha256"]:
            raise PullError(f"{camera}: the Pi's {name} is not the verified file; nothing deleted")
    deleted = []
    for name in raw_names(camera):
        rel = (pi.raw.path / name).as_posix()
        if transport.size(rel) is not None:
            transport.remove(rel)
            deleted.append(rel)
    report = pi.agent_capture_report(camera).as_posix()
    if transport.size(report) is not None:
        transport.remove(report)
        deleted.append(report)
    for info in (read_ledger(session_dir)["cameras"][camera].get("ttl") or {}).values():
        rel = (pi.ttl.path / info["file"]).as_posix()  # only the copy the desktop holds verified
        if transport.size(rel) is not None and transport.sha256(rel) == info["sha256"]:
            transport.remove(rel)
            deleted.append(rel)
    transport.rmdir(pi.ttl.path.as_posix())
    transport.rmdir(pi.raw.path.as_posix())
    transport.rmdir(pi.root.as_posix())
    update_ledger(session_dir, camera, {"deleted_from_pi": {"at": time.time(), "files": deleted}})
    return {"camera": camera, "deleted": deleted}
