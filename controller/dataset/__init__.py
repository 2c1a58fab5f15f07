"""From synced video to a 3D motion-capture dataset: board, calibration, 2D pose, triangulation,
exports. `layout.py` is the one home of where each artefact lives in a session directory."""
