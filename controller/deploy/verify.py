"""Does the deployed rig answer? Checked from the desktop through cam0's control port with the
shared secret, which is what recording needs:

- cam0 (server): answers an authenticated STATUS — it runs, listens, and holds our secret;
- every client: listed as connected in cam0's STATUS — it runs, reached cam0's fan-out port and
  passed the same HMAC handshake (so its secret matches too).

A client cannot be checked without cam0; its result then says so."""

from __future__ import annotations

import time
from collections.abc import Callable

from controller.rig.cluster_link import ClusterLink
from controller.rig.config import RigConfig
from syncrig_agent.contract.protocol import ProtocolError, RemoteError, RequestTimeout

_LINK_ERRORS = (OSError, ProtocolError, RemoteError, RequestTimeout)


def cam0_status(config: RigConfig, secret: bytes, timeout: float = 3.0) -> dict:
    """cam0's STATUS over an authenticated link (raises on any failure)."""
    server = config.server
    link = ClusterLink((server.host.strip("[]"), config.control_port), secret, name="deploy")
    try:
        link.connect(timeout=timeout)
        return link.status(timeout=timeout)
    finally:
        link.close()


def recording_in_progress(config: RigConfig, secret: bytes) -> str | None:
    """The session id cam0 is recording, if it answers and records (a deploy restarts agents)."""
    try:
        status = cam0_status(config, secret)
    except _LINK_ERRORS:
        return None  # not running (or not ours): nothing to interrupt
    session = status.get("session") or {}
    if session or (status.get("server") or {}).get("state") == "recording":
        return str(session.get("session_id") or "unknown session")
    return None


def verify_agents(
    config: RigConfig,
    secret: bytes,
    names: list[str],
    timeout_s: float,
    tick: Callable[[float], None] | None = None,
) -> dict[str, str | None]:
    """camera → None when it answers, else why not; polls until all answer or `timeout_s`."""
    server = config.server
    where = f"{server.name} ({server.host}:{config.control_port})"
    started = time.monotonic()
    while True:
        problems: dict[str, str | None] = {}
        try:
            status = cam0_status(config, secret)
            clients = status.get("clients") or {}
            for name in names:
                if name == server.name:
                    problems[name] = None
                    continue
                entry = clients.get(name)
                if entry and entry.get("connected"):
                    problems[name] = None
                elif entry:
                    problems[name] = f"not connected to {where}: {entry.get('close_reason') or 'link down'}"
                else:
                    problems[name] = f"has not connected to {where}"
        except _LINK_ERRORS as exc:
            why = f"{where} does not answer with the shared secret: {type(exc).__name__}: {exc}"
            problems = {n: why if n == server.name else f"cannot be checked: {why}" for n in names}
        elapsed = time.monotonic() - started
        if tick:
            tick(min(1.0, elapsed / timeout_s) if timeout_s > 0 else 1.0)
        if all(v is None for v in problems.values()) or elapsed >= timeout_s:
            return problems
        time.sleep(0.5)
