"""`syncrig setup` (setup.sh): the rig configuration and the shared secret.

With flags it runs unattended; on a terminal without --camera it asks (cameras, hosts, users,
frame rate, resolution, time sync). Every answer goes through the same validation as the flags.
The secret file is created with mode 0600 from its first byte (os.open with the mode, O_EXCL);
an existing secret with wider permissions is repaired (and the user told to rotate it), never
silently used. Nothing existing is overwritten without --force; rotating the secret needs
--force --rotate-secret and a redeploy of every Pi."""

from __future__ import annotations

import argparse
import os
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from controller.rig.config import (
    PTP_GRANDMASTER_CHOICES,
    TIME_SYNC_CHOICES,
    CameraEntry,
    ConfigError,
    RigConfig,
    default_home,
    parse_camera_spec,
    save_config,
)
from syncrig_agent.contract.protocol import write_secret


def add_setup_command(sub: argparse._SubParsersAction) -> None:
    setup = sub.add_parser("setup", help="write the rig configuration and the shared secret (setup.sh)")
    a = setup.add_argument
    a("--config", type=Path, default=None, help="config file (default ~/.config/syncrig/rig.json)")
    a(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=[USER@]HOST",
        help="a camera; the first one is the server (cam0). Repeat for each camera. Without it, on "
        "a terminal, setup asks",
    )
    a("--fps", type=float, default=None, help="frames per second (default 56)")
    a("--width", type=int, default=None, help="frame width (default 1536)")
    a("--height", type=int, default=None, help="frame height (default 864)")
    a("--bitrate", type=int, default=None, help="H.264 bitrate, bit/s (default 25000000)")
    a("--sessions-root", default=None, help="sessions on this desktop (default ~/syncrig-sessions)")
    a("--pi-install-dir", default=None, help="agent install dir on each Pi (default ~/syncrig)")
    a("--pi-data-dir", default=None, help="recordings on each Pi (default ~/syncrig/recordings)")
    a("--time-sync", choices=TIME_SYNC_CHOICES, default=None, help="clock discipline (default ptp)")
    a("--ptp-interface", default=None, help="PTP network interface (default eth0)")
    a("--ptp-grandmaster", choices=PTP_GRANDMASTER_CHOICES, default=None, help="default: server (cam0)")
    a("--force", action="store_true", help="replace an existing config (the secret is kept)")
    a(
        "--rotate-secret",
        action="store_true",
        help="with --force: replace the shared secret too (every Pi must then be redeployed)",
    )
    setup.set_defaults(handler=cmd_setup)


DEFAULTS = {
    "fps": 56.0,
    "width": 1536,
    "height": 864,
    "bitrate": 25_000_000,
    "sessions_root": "~/syncrig-sessions",
    "pi_install_dir": "~/syncrig",
    "pi_data_dir": "~/syncrig/recordings",
    "time_sync": "ptp",
    "ptp_interface": "eth0",
    "ptp_grandmaster": "server",
}


def _ask(prompt: str, default: str, read: Callable[[str], str]) -> str:
    answer = read(f"{prompt} [{default}]: ").strip()
    return answer or default


def ask_config(read: Callable[[str], str], out) -> dict:  # noqa: ANN001
    """The interactive questions; each answer is checked at once and asked again if refused."""
    print("SyncRig setup: press Enter to keep the value in brackets.", file=out)
    while True:
        try:
            n = int(_ask("How many cameras", "3", read))
            if 1 <= n <= 64:
                break
        except ValueError:
            pass
        print("  a number from 1 to 64, please", file=out)
    cameras: list[CameraEntry] = []
    for i in range(n):
        while True:
            role = "server: the camera the desktop talks to" if i == 0 else "client"
            name = _ask(f"Camera {i + 1} name ({role})", f"cam{i}", read)
            host = _ask(f"  {name}: host name or IP address", f"10.0.0.{10 + i}", read)
            user = _ask(f"  {name}: SSH user", "pi", read)
            entry = parse_camera_spec(f"{name}={user}@{host}", i)
            try:
                RigConfig(cameras=[*cameras, entry]).validate()
            except ConfigError as exc:
                print(f"  refused: {exc}", file=out)
                continue
            cameras.append(entry)
            break
    values: dict = {"cameras": cameras}
    questions = [
        ("fps", "Frames per second", float),
        ("width", "Frame width", int),
        ("height", "Frame height", int),
        ("time_sync", f"Clock sync ({' / '.join(TIME_SYNC_CHOICES)})", str),
        ("ptp_interface", "PTP network interface", str),
        ("ptp_grandmaster", f"PTP grandmaster ({' / '.join(PTP_GRANDMASTER_CHOICES)})", str),
    ]
    for key, prompt, kind in questions:
        if key.startswith("ptp_") and values.get("time_sync") != "ptp":
            continue
        while True:
            raw = _ask(prompt, str(DEFAULTS[key]), read)
            try:
                value = kind(raw)
                RigConfig(cameras=cameras, **{key: value}).validate()
            except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
                print(f"  refused: {exc}", file=out)
                continue
            values[key] = value
            break
    return values


def prepare_secret(path: Path, rotate: bool, out) -> bool:  # noqa: ANN001
    """Create (or, asked to, replace) the secret with mode 0600; repair wider permissions of an
    existing one. Returns True if a new secret was written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        write_secret(path)
        print(f"wrote a new shared secret to {path} (mode 0600)", file=out)
        return True
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"secret: {path} exists and is not a regular file (a symlink?); refusing to use it")
    if st.st_uid != os.getuid():
        raise ConfigError(f"secret: {path} belongs to uid {st.st_uid}, not to you; refusing to use it")
    if rotate:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
        write_secret(tmp)
        os.replace(tmp, path)
        print(
            f"wrote a NEW shared secret to {path} (mode 0600). The Pis still hold the old one: run "
            "./install.sh to redeploy every camera, or the controller and the cameras cannot connect.",
            file=out,
        )
        return True
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        print(
            f"WARNING: {path} had mode {mode:04o} (readable by others); repaired to 0600. Anyone who "
            "read it can drive the cameras: consider --force --rotate-secret and a redeploy.",
            file=out,
        )
    else:
        print(f"keeping the existing shared secret {path}", file=out)
    return False


def cmd_setup(args: argparse.Namespace) -> int:
    path = args.config or default_home() / "rig.json"
    err = sys.stderr
    if args.rotate_secret and not args.force:
        print("syncrig setup: --rotate-secret replaces the shared secret; it needs --force", file=err)
        return 2
    if path.exists() and not args.force:
        print(f"syncrig setup: {path} exists; pass --force to replace it (the secret is kept)", file=err)
        return 1
    values: dict = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    try:
        if args.camera:
            values["cameras"] = [parse_camera_spec(spec, i) for i, spec in enumerate(args.camera)]
        elif sys.stdin.isatty():
            values = {**ask_config(input, sys.stdout), **values}
        else:
            print(
                "syncrig setup: give at least one --camera NAME=[USER@]HOST (the first is cam0, the "
                "server), or run it on a terminal to be asked",
                file=err,
            )
            return 2
        secret = path.parent / "secret"
        config = RigConfig(**{**DEFAULTS, **values, "secret_file": str(secret)}).validate()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        prepare_secret(secret, args.rotate_secret, sys.stdout)
    except (ConfigError, OSError) as exc:
        print(f"syncrig setup: {exc}", file=err)
        return 2
    save_config(path, config)
    print(
        f"wrote {path}: {len(config.cameras)} camera(s), server {config.server.name} at "
        f"{config.server.host}, time sync {config.time_sync}. Next: ./install.sh"
    )
    return 0
