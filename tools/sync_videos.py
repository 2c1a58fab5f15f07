#!/usr/bin/env python3
"""Standalone sync: match + quality report + plots + synced outputs for one session directory (or a
folder of SqueakShot-style `<cam>_<rec>.pts` + `.h264`/`.mp4` files), with no controller running.

    tools/sync_videos.py SESSION_DIR [--fill repeat] [--analyze-only]

The same command as `syncrig sync` (the one sync use case, controller/pipeline/sync.py); run it with
the project's environment (`.venv`).
"""

from __future__ import annotations

import sys
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
for _path in (_root, _root / "pi-deploy"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from controller.cli.pipeline import sync_videos_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(sync_videos_main())
