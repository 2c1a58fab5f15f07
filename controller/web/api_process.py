"""`syncrig process` as a job for the UI's job panel: the command runs as a child process (Ray
lives there, not in the controller), its progress lines become the job's progress and log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from flask import Blueprint, jsonify

from controller.cluster.process import REPORT_NAME
from controller.cluster.steps import STEPS
from controller.jobs import JobContext
from controller.session.store import session_path
from controller.web.helpers import FormError, json_body, runtime

bp = Blueprint("process", __name__, url_prefix="/api/sessions/<session_id>")

PROGRESS_LINE = re.compile(r"^(\w+)\s+(\S+): (\d+)/(\d+)$")  # cli/process.py's _Progress


def _command(path: Path, data: dict) -> tuple[list[str], list[str]]:
    steps = data.get("steps", list(STEPS))
    if not isinstance(steps, list) or not steps or any(s not in STEPS for s in steps):
        raise FormError(f"steps: a list of some of {', '.join(STEPS)}, got {steps!r}", "steps")
    cmd = [sys.executable, "-m", "controller", "process", str(path), "--steps", ",".join(steps)]
    address = data.get("ray_address")
    if address is not None:
        if not isinstance(address, str) or not re.fullmatch(r"[\w.\-]+:\d+", address):
            raise FormError(f"ray_address: host:port, got {address!r}", "ray_address")
        cmd += ["--ray-address", address]
    workers = data.get("workers")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise FormError(f"workers: a positive integer, got {workers!r}", "workers")
        cmd += ["--workers", str(workers)]
    serial = data.get("serial", False)
    if not isinstance(serial, bool):
        raise FormError("serial: must be true or false", "serial")
    if serial:
        cmd.append("--serial")
    return cmd, [s for s in STEPS if s in steps]


@bp.post("/process")
def process_session(session_id: str):  # noqa: ANN201
    path = session_path(runtime().sessions_root, session_id)
    cmd, steps = _command(path, json_body())

    def run(ctx: JobContext) -> dict:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tail: list[str] = []
        for line in proc.stderr:
            line = line.rstrip()
            ctx.log(line)
            tail = (tail + [line])[-20:]
            match = PROGRESS_LINE.match(line)
            if match and match.group(1) in steps:
                done, total = int(match.group(3)), int(match.group(4))
                fraction = (steps.index(match.group(1)) + done / max(total, 1)) / len(steps)
                ctx.progress(fraction, f"{match.group(1)} {done}/{total}")
            if ctx.cancelled:
                proc.terminate()
        out = proc.stdout.read()
        if proc.wait() != 0:
            raise RuntimeError("syncrig process failed: " + " | ".join(tail[-5:]))
        for line in out.splitlines():
            ctx.log(line)
        report = json.loads((path.parent / REPORT_NAME).read_text())
        keys = ("computed", "reused", "reruns", "nodes", "data", "workers", "seconds", "report")
        return {"session_id": session_id, **{k: report[k] for k in keys}}

    job = runtime().jobs.submit("process", f"Process {session_id}", run)
    return jsonify({"job_id": job.id}), 202
