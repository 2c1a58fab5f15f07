"""The one sync use case, behind `syncrig sync`, `tools/sync_videos.py` and the web's Sync job:
(a SqueakShot folder imported into a new session first) → match + quality report + plots → synced
outputs. The callers only parse their options and show progress; the steps and their order are here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.pipeline.analyze import analyze_session
from controller.pipeline.sources import SessionError
from controller.pipeline.squeakshot import import_squeakshot, is_squeakshot_folder
from controller.pipeline.synced import write_synced_outputs
from controller.progress import Progress
from syncrig_agent.contract.formats import read_manifest

# The stages, in order (also the CLI's progress bar titles).
IMPORTING = "importing"
ANALYZING = "analyzing"
WRITING_OUTPUTS = "synced outputs"

# stage_progress(stage, session it works on) → that stage's progress callback (or None); called as
# each stage begins, so a caller can show one bar per stage or map the stages onto one job.
StageProgress = Callable[[str, Path], Progress | None]


@dataclass(frozen=True)
class SqueakShotImport:
    """How to take a folder of SqueakShot recordings: where the new session goes, which recording."""

    dest_root: Path | None = None  # default: <folder>/syncrig-sessions
    recording: str | None = None  # needed when the folder holds several


@dataclass(frozen=True)
class SyncRequest:
    tolerance_us: float | None = None  # match tolerance; None = half a frame period
    mode: str = "auto"  # auto | grid | time
    reference: str | None = None  # time mode: the camera whose frames define the instants
    fill: str = "gaps"  # gaps | repeat (see pipeline.outputs.FILL_MODES)
    outputs: bool = True  # False: match + report + plots only (`--analyze-only`)
    squeakshot: SqueakShotImport | None = None  # None: the path must be a SyncRig session


@dataclass(frozen=True)
class SyncResult:
    session: Path  # the session analysed (a new one when a SqueakShot folder was imported)
    report: dict  # synced/report.json's content, with "outputs" when they were written
    imported: bool


def tolerance_ns(tolerance_us: float | None) -> int | None:
    """µs → the matcher's integer ns, rounded to the nearest ns: truncating would turn a value like
    1.001 µs (1000.9999999999999 in binary floating point) into 1000 ns."""
    return None if tolerance_us is None else round(tolerance_us * 1000)


def check_tolerance_us(session: Path | str, tolerance_us: float | None) -> None:
    """The tolerance in the unit it is given in (µs, as the CLI option and the page's field): at
    most half the session's frame period, or a frame could be taken for its neighbour's instant.
    Raises ValueError naming `tolerance_us` and the allowed range in µs."""
    if tolerance_us is None:
        return
    try:
        manifest = read_manifest(session)
    except (OSError, ValueError):
        return  # not a readable session: the analysis says what is wrong with it
    half_period_us = (int(manifest.period_ns) // 2) / 1e3
    if not 0 < tolerance_ns(tolerance_us) <= half_period_us * 1e3:
        raise ValueError(
            f"tolerance_us: must be in (0, {half_period_us:g}] µs (half a frame period at "
            f"{manifest.fps:g} fps), got {tolerance_us:g} µs"
        )


def sync_session(
    path: Path | str, request: SyncRequest, stage_progress: StageProgress | None = None
) -> SyncResult:
    """Run the sync use case on a session directory (or, with `request.squeakshot`, on a SqueakShot
    folder). Raises SessionError (not a session, unreadable footage), ValueError (bad option) or
    OSError; the report and outputs are written under the session's synced/."""
    session = Path(path)
    stage = stage_progress or (lambda _stage, _session: None)
    if not session.is_dir():
        raise SessionError(f"{session} is not a directory")
    imported = request.squeakshot is not None and is_squeakshot_folder(session)
    if imported:
        dest = request.squeakshot.dest_root or session / "syncrig-sessions"
        session = import_squeakshot(
            session, dest, recording=request.squeakshot.recording, progress=stage(IMPORTING, session)
        )
    check_tolerance_us(session, request.tolerance_us)
    report = analyze_session(
        session,
        tolerance_ns=tolerance_ns(request.tolerance_us),
        mode=request.mode,
        reference=request.reference,
        progress=stage(ANALYZING, session),
    )
    if request.outputs:
        report["outputs"] = write_synced_outputs(
            session, fill=request.fill, progress=stage(WRITING_OUTPUTS, session)
        )
    return SyncResult(session=session, report=report, imported=imported)
