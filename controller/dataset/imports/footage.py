"""`syncrig import`: footage from another rig (and its calibration) as a new, synced SyncRig session.

The steps, in order: read the calibration (so a bad one is refused before anything is written) →
pipeline/footage_import.py makes the session (raw/ as a Pi would have recorded it, manifest marked
absolute or relative) → the one sync use case (pipeline/sync.py: match table, report, synced
outputs) → the import's own section in synced/report.json → the calibration, checked against the
videos' names and sizes, written as calibration/calibration.toml (mm). A failure after the session
was made removes that new session, and only it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from controller.dataset.imports.calibration import (
    ImportedCalibration,
    check_camera_names,
    finite_check,
    fit_to_images,
    read_calibration,
)
from controller.pipeline.footage_import import FootageImport, ImportResult, import_footage
from controller.pipeline.sync import IMPORTING, StageProgress, SyncRequest, SyncResult, sync_session
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout


@dataclass
class FootageSession:
    imported: ImportResult
    sync: SyncResult
    calibration: ImportedCalibration | None

    @property
    def session(self) -> Path:
        return self.imported.session


def import_session(
    request: FootageImport,
    calibration: Path | None = None,
    units: str | None = None,
    stage_progress: StageProgress | None = None,
) -> FootageSession:
    """Import, sync and (optionally) calibrate; raises SessionError / CalibrationImportError (both
    ValueError) or OSError with a message naming the file."""
    stage = stage_progress or (lambda _stage, _session: None)
    calib = read_calibration(calibration, units) if calibration is not None else None
    if calib is not None:
        finite_check(calib)
    imported = import_footage(request, stage(IMPORTING, request.source))
    try:
        if calib is not None:
            names = [c.name for c in imported.cameras]
            check_camera_names(calib, names, f"the footage in {request.source}")
            sizes = {c.name: (c.width, c.height) for c in imported.cameras}
            fit_to_images(calib, sizes, "its video")
        synced = sync_session(imported.session, SyncRequest(), stage_progress)
        synced.report["import"] = imported.summary()
        write_json_atomic(SessionLayout(imported.session).synced.report, synced.report)
        if calib is not None:
            calib.cameras.subset(names).save(
                SessionLayout(imported.session).calibration_toml, calib.metadata()
            )
    except BaseException:
        shutil.rmtree(imported.session, ignore_errors=True)
        raise
    return FootageSession(imported, synced, calib)


__all__ = ["FootageSession", "import_session"]
