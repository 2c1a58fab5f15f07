"""The fault matrix: for each part of the rig — client agent, cam0 agent, receiver side-car, FFmpeg
receiver, controller, a client's network link — kill it (SIGKILL; SIGSTOP too for the agents; the
link cut in a network namespace when root) at random instants across many recordings, and count
what it cost: sessions usable (synced, manifest counts equal to the files, the fault stated in the
manifest, the sync report and the session page), frames lost that any component had written or
received, and the time from Stop to the session on disk. One run: benchmarks/fault_runs.py.

    .venv/bin/python benchmarks/fault_matrix.py --runs 5              # every fault, 5 runs each
    .venv/bin/python benchmarks/fault_matrix.py --faults client-agent:KILL,ffmpeg:KILL --runs 2

The instants are drawn from --seed (default: a fresh one, printed, so a run can be repeated).
Heartbeat timeout 3 s (the simulated default is 10 s) keeps the runs short; cam0 faults cost it.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_runs import FAULTS, Fault, RunResult, make_rig, run_controller_fault, run_once  # noqa: E402


def _netns_rig(workdir: Path, heartbeat_timeout_s: float):  # noqa: ANN202 (a NetnsRig, or None + why)
    from controller.rig.simulated import SimCamera

    from netns_support import NetnsRig, Topology, cleanup_leftovers, netns_unavailable_reason

    why = netns_unavailable_reason()
    if why is not None:
        return None, why
    cleanup_leftovers()
    topology = Topology(["cam0", "cam1", "cam2"]).up()
    rig = NetnsRig(
        workdir,
        [SimCamera(f"cam{i}") for i in range(3)],
        topology,
        width=320,
        height=240,
        bitrate=1_000_000,
        heartbeat_timeout_s=heartbeat_timeout_s,
    )
    try:
        rig.start(timeout=60.0)
    except BaseException:
        rig.stop()
        topology.close()
        raise
    return rig, None


def run_matrix(
    faults: list[str],
    runs: int,
    seconds: float,
    seed: int,
    workdir: Path,
    heartbeat_timeout_s: float = 3.0,
    outputs: bool = True,
) -> dict:
    """Every fault `runs` times at instants drawn from `seed`; JSON-serialisable results."""
    rng = random.Random(seed)
    results: dict[str, list[RunResult]] = {}
    skipped: dict[str, str] = {}
    restarts: list[dict] = []  # runs redone because the recording did not start
    rig = make_rig(workdir / "rig", heartbeat_timeout_s)
    try:
        for key in faults:
            fault: Fault = FAULTS[key]
            results[key] = []
            netns = None
            if fault.how == "CUT":
                netns, why = _netns_rig(workdir / "netns-rig", heartbeat_timeout_s)
                if netns is None:
                    skipped[key] = f"NOT RUN: {why}"
                    print(f"{key}: {skipped[key]}", flush=True)
                    continue
            try:
                for run in range(runs):
                    instant = rng.uniform(0.3, seconds - 0.3)
                    started = time.monotonic()
                    for attempt in range(3):  # a recording that did not start (START refused) is redone
                        if fault.component == "controller":
                            workspace = workdir / f"ctl-{run}-{attempt}"
                            result = run_controller_fault(rig, workspace, instant, seconds, outputs)
                        else:
                            target = netns or rig
                            sessions = workdir / "sessions"
                            result = run_once(
                                target, sessions, fault, instant, seconds, netns is None, outputs
                            )
                        if result.started:
                            break
                        restarts.append({"fault": key, "run": run, "problems": result.problems})
                    results[key].append(result)
                    print(
                        f"{key:20s} run {run + 1}/{runs}: fault at {instant:5.2f} s, "
                        f"{'usable' if result.usable else 'UNUSABLE'}, {result.frames_lost} frames lost, "
                        f"stop {result.stop_s} s, sync {result.sync_s} s, "
                        f"run {time.monotonic() - started:.0f} s"
                        + (f"  {result.problems}" if result.problems else ""),
                        flush=True,
                    )
            finally:
                if netns is not None:
                    netns.stop()
                    netns.topology.close()
    finally:
        rig.stop()
    return {
        "seed": seed,
        "runs_per_fault": runs,
        "seconds": seconds,
        "skipped": skipped,
        "not_started_redone": restarts,
        "results": results,
    }


def summarize(matrix: dict) -> list[dict]:
    rows = []
    for key, runs in matrix["results"].items():
        if not runs:
            continue
        stops = [r.stop_s for r in runs if r.stop_s is not None]
        rows.append(
            {
                "fault": key,
                "component": FAULTS[key].component,
                "runs": len(runs),
                "usable": sum(r.usable for r in runs),
                "frames_lost": sum(r.frames_lost for r in runs),
                "stated": sum(r.stated for r in runs),
                "stop_s_median": round(statistics.median(stops), 2) if stops else None,
                "stop_s_max": max(stops) if stops else None,
            }
        )
    return rows


def print_table(rows: list[dict], skipped: dict[str, str]) -> None:
    print(
        f"\n{'fault':20s} {'component':20s} {'runs':>4s} {'usable':>6s} {'lost':>5s} {'stated':>6s} "
        "stop s (median / max)"
    )
    for r in rows:
        print(
            f"{r['fault']:20s} {r['component']:20s} {r['runs']:4d} {r['usable']:6d} {r['frames_lost']:5d} "
            f"{r['stated']:6d} {r['stop_s_median']} / {r['stop_s_max']}"
        )
    for key, why in skipped.items():
        print(f"{key:20s} {why}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="recordings per fault")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)}")
    ap.add_argument("--seconds", type=float, default=4.0, help="recording length; the fault falls inside it")
    ap.add_argument("--seed", type=int, default=None, help="instants' seed (default: fresh, printed)")
    ap.add_argument("--heartbeat-timeout-s", type=float, default=3.0)
    ap.add_argument("--analyze-only", action="store_true", help="sync = match + report, no synced outputs")
    ap.add_argument(
        "--json", type=Path, default=Path(__file__).resolve().parent / "output" / "fault_matrix.json"
    )
    args = ap.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or args.runs < 1 or args.seconds < 1.0:
        print(f"fault_matrix: unknown faults {unknown} (or --runs < 1, --seconds < 1)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    print(
        f"fault matrix: {len(faults)} faults x {args.runs} runs, {args.seconds:g} s recordings, seed {seed}"
    )
    with tempfile.TemporaryDirectory(prefix="syncrig-faults-") as tmp:
        matrix = run_matrix(
            faults, args.runs, args.seconds, seed, Path(tmp), args.heartbeat_timeout_s, not args.analyze_only
        )
    rows = summarize(matrix)
    print_table(rows, matrix["skipped"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {
        **matrix,
        "results": {k: [r.as_dict() for r in v] for k, v in matrix["results"].items()},
        "table": rows,
    }
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")
    bad = sum(r["runs"] - r["usable"] for r in rows) + sum(r["frames_lost"] for r in rows)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
