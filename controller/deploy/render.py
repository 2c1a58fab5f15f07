"""Rendering what lands on a Pi: the agent's settings (agent.json) and the text files installed
under /etc (systemd units, the sudoers drop-in, time-sync configs).

Templates carry `@NAME@` placeholders. The renderer is generic over them and strict: every
placeholder in a template must have a value, and a value is one line of a small character set
(no whitespace except plain spaces, no `%`/`$` that systemd would expand, no quotes or newlines
that could start a new directive). Values come from the validated rig configuration anyway; this
is the second fence, so no config value can ever become a unit directive or a sudoers rule.
"""

from __future__ import annotations

import posixpath
import re

from controller.rig.config import CameraEntry, RigConfig, pi_ttl_settings
from syncrig_agent.settings import AgentSettings, TtlSettings

_PLACEHOLDER_RE = re.compile(r"@([A-Z][A-Z0-9_]*)@")
_SAFE_VALUE_RE = re.compile(r"[A-Za-z0-9 ._/@:+,=-]*")


class RenderError(ValueError):
    """A template that cannot be filled safely (missing or unsafe value)."""


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(template))


def render_template(template: str, values: dict[str, str], name: str = "template") -> str:
    """Fill every `@NAME@` in `template`; refuses a missing value or one outside the safe set."""
    missing = sorted(placeholders(template) - set(values))
    if missing:
        raise RenderError(f"{name}: no value for {', '.join('@' + m + '@' for m in missing)}")
    for key, value in values.items():
        if not isinstance(value, str) or not _SAFE_VALUE_RE.fullmatch(value):
            raise RenderError(f"{name}: unsafe value for @{key}@: {value!r}")
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def agent_settings_for(config: RigConfig, cam: CameraEntry, install_dir: str, data_dir: str) -> dict:
    """The camera's agent.json: validated agent settings, the real camera backend."""
    server = config.server
    settings = AgentSettings(
        name=cam.name,
        role=cam.role,
        data_dir=data_dir,
        secret_file=posixpath.join(install_dir, "secret"),
        listen=f"0.0.0.0:{config.control_port}",
        fanout_listen=f"0.0.0.0:{config.fanout_port}",
        preview_listen=f"0.0.0.0:{cam.preview_port}",
        server=f"{server.host}:{config.fanout_port}",
        host_label=cam.host,
        backend="picamera2",
        width=config.width,
        height=config.height,
        bitrate=config.bitrate,
        keyframe_interval_s=config.keyframe_interval_s,
        heartbeat_interval_s=config.heartbeat_interval_s,
        heartbeat_timeout_s=config.heartbeat_timeout_s,
        ttl=pi_ttl_settings(cam.ttl) if cam.ttl else TtlSettings(),
    ).validate()
    data = settings.as_dict()
    data.pop("simulation", None)
    return data


def sudoers_commands(systemctl: str, units: list[str], extra: list[list[str]] = ()) -> str:
    """The exact command lines (absolute program path, fixed arguments, no wildcards) the agent
    user may run as root: start/stop/restart of each installed service, plus `extra` argv lists
    (the PTP state query through pmc when ptp4l runs)."""
    lines = [f"{systemctl} {verb} {unit}" for unit in units for verb in ("start", "stop", "restart")]
    lines += [" ".join(argv) for argv in extra]
    return ", ".join(lines)
