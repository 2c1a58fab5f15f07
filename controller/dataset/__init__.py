"""From synced video to a 3D motion-capture dataset: board, calibration, 2D pose, triangulation,
exports. Where each artefact lives in a session directory: syncrig_agent.contract.layout.SessionLayout."""
