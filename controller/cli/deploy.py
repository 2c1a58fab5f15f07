"""`syncrig deploy` (install.sh): host keys first (asked about on a terminal, before any progress
bar), then every camera in parallel with progress, then a result table; exit 1 if any camera
failed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from controller.deploy.errors import DeployError
from controller.deploy.hostkeys import HostKeyInfo, remember_host_key, scan_host_keys
from controller.deploy.plan import DeployOptions, plan_rig
from controller.deploy.runner import CameraResult, deploy_rig, select_cameras
from controller.progress import ProgressBar
from controller.rig.config import ConfigError, RigConfig, default_home, load_config


def add_deploy_command(sub: argparse._SubParsersAction) -> None:
    dep = sub.add_parser("deploy", help="install the agent on every Pi over SSH (install.sh)")
    a = dep.add_argument
    a("--config", type=Path, default=None, help="config file (default ~/.config/syncrig/rig.json)")
    a("--camera", action="append", default=[], help="deploy only this camera (repeatable)")
    a("--ssh-port", type=int, default=22)
    a("--known-hosts", help="known_hosts file to check host keys against (default ~/.ssh/known_hosts)")
    a("--identity", help="SSH private key file")
    a(
        "--accept-new-host-keys",
        action="store_true",
        help="trust hosts missing from known_hosts (their fingerprints are printed); a CHANGED key "
        "is refused regardless",
    )
    a("--no-packages", action="store_true", help="skip the venv / pip install on the Pi")
    a("--no-service", action="store_true", help="do not install units/sudoers, restart or verify")
    a("--wheelhouse", type=Path, help="install from these wheels only (Pis without internet)")
    a("--verify-timeout", type=float, default=60.0, help="seconds to wait for the agents to answer")
    a("--destdir", default="/", help="the Pis' filesystem root for system files (tests; '{camera}' allowed)")
    a("--templates", type=Path, help="pi-deploy/ templates to render (default: this checkout's)")
    a("--dry-run", action="store_true", help="print what would be deployed, connect to nothing")
    dep.set_defaults(handler=cmd_deploy)


def _options(args: argparse.Namespace) -> DeployOptions:
    return DeployOptions(
        ssh_port=args.ssh_port,
        key_filename=args.identity,
        known_hosts=args.known_hosts,
        install_packages=not args.no_packages,
        start_services=not args.no_service,
        verify_timeout_s=args.verify_timeout,
        wheelhouse=args.wheelhouse,
        destdir=args.destdir,
        **({"templates": args.templates} if args.templates else {}),
    ).validate()


def print_plan(config: RigConfig, names: list[str], options: DeployOptions, out: TextIO) -> None:
    for p in plan_rig(config, options):
        if p.camera.name not in names:
            continue
        cam = p.camera
        print(f"{cam.name}: {cam.ssh_user}@{cam.host} -> {p.install_dir}", file=out)
        for f in [*p.files, p.sudoers]:
            print(f"  {f.dest} (mode {f.mode:04o})", file=out)
        print(f"  services: {', '.join(p.units + p.restart_only)}", file=out)
        print(json.dumps(p.agent_settings, indent=2), file=out)


def confirm_host_keys(
    infos: list[HostKeyInfo], known_hosts: Path, accept_new: bool, interactive: bool, err: TextIO
) -> dict[str, str]:
    """Remember confirmed keys; returns camera → why it is refused."""
    refused: dict[str, str] = {}
    for info in infos:
        if info.status in ("changed", "unreachable"):
            refused[info.camera] = info.message
        elif info.status == "unknown":
            where = f"{info.camera} ({info.host}:{info.port})"
            if accept_new:
                print(f"{where}: trusting new host key {info.key_type} {info.fingerprint}", file=err)
            elif interactive:
                print(f"{where}: host key not in {known_hosts}", file=err)
                print(f"  {info.key_type} {info.fingerprint}", file=err)
                answer = input("  Trust this key and remember it? [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    refused[info.camera] = f"host key {info.fingerprint} not confirmed"
                    continue
            else:
                refused[info.camera] = "not a terminal, so nobody could confirm it: " + info.message
                continue
            remember_host_key(known_hosts, info)
    return refused


def print_results(results: list[CameraResult], out: TextIO) -> None:
    rows = [("camera", "target", "result", "step", "time", "reason")]
    for r in results:
        rows.append(
            (
                r.camera,
                r.target,
                "ok" if r.ok else "FAILED",
                r.step,
                f"{r.seconds:.1f}s",
                r.message.replace("\n", " "),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5], file=out)


def cmd_deploy(args: argparse.Namespace) -> int:
    from syncrig_agent.contract.protocol import load_secret

    try:
        config = load_config(args.config or default_home() / "rig.json")
        targets = select_cameras(config, args.camera)
        options = _options(args)
        names = [c.name for c in targets]
        if args.dry_run:
            print_plan(config, names, options, sys.stdout)
            return 0
        secret = load_secret(Path(config.secret_file).expanduser())
    except (ConfigError, ValueError, OSError) as exc:
        print(f"syncrig deploy: {exc}", file=sys.stderr)
        return 2
    known_hosts = options.known_hosts_path
    infos = scan_host_keys(targets, options.ssh_port, known_hosts, options.connect_timeout_s)
    refused = confirm_host_keys(infos, known_hosts, args.accept_new_host_keys, sys.stdin.isatty(), sys.stderr)
    go = [n for n in names if n not in refused]
    results: list[CameraResult] = []
    if go:
        results = _deploy_with_progress(config, secret, options, go)
        if results is None:
            return 1
    by_name = {r.camera: r for r in results}
    for cam in targets:
        if cam.name in refused:
            by_name[cam.name] = CameraResult(
                cam.name, f"{cam.ssh_user}@{cam.host}", False, "host key", refused[cam.name]
            )
    ordered = [by_name[n] for n in names]
    print_results(ordered, sys.stdout)
    for r in ordered:
        if r.timings:
            print(f"  {r.camera} step times: " + ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items()))
    failed = [r.camera for r in ordered if not r.ok]
    if failed:
        print(f"syncrig deploy: failed on {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"syncrig deploy: {len(ordered)} camera(s) deployed and answering")
    return 0


def _deploy_with_progress(
    config: RigConfig, secret: bytes, options: DeployOptions, names: list[str]
) -> list[CameraResult] | None:
    bar = ProgressBar("deploy", total=1.0)
    fractions = dict.fromkeys(names, 0.0)
    steps: dict[str, str] = {}
    tty = bar._tty

    def progress(camera: str, fraction: float, what: str) -> None:
        fractions[camera] = fraction
        if steps.get(camera) != what:
            steps[camera] = what
            # One line per camera and step; the overall bar is redrawn below it.
            prefix = "\r\033[K" if tty else ""
            bar.stream.write(f"{prefix}  {camera}: {what}\n")
        bar.update(sum(fractions.values()) / len(fractions))

    try:
        results = deploy_rig(config, secret, options, names, progress)
    except (DeployError, ConfigError, OSError) as exc:
        print(f"\nsyncrig deploy: {exc}", file=sys.stderr)
        return None
    bar.close()
    return results
