"""What a deploy puts where, per camera, decided before any connection: the install and data
directories, agent.json, and every system file (rendered text, its destination, its mode) plus
the services to enable and restart. The steps (steps.py) only carry out a plan."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.deploy.render import agent_settings_for, render_template, sudoers_commands
from controller.deploy.ssh import default_known_hosts
from controller.rig.config import CameraEntry, ConfigError, RigConfig
from syncrig_agent.clock_state.readers import pmc_sudo_argv

_DESTDIR_RE = re.compile(r"/[A-Za-z0-9._/{}-]*")
_SYSTEMCTL_RE = re.compile(r"/[A-Za-z0-9._/-]+")
PI_DEPLOY = Path(__file__).resolve().parent.parent.parent / "pi-deploy"

AGENT_UNIT = "syncrig-agent.service"
PTP4L_UNIT = "syncrig-ptp4l.service"
PHC2SYS_UNIT = "syncrig-phc2sys.service"
CHRONY_UNIT = "chrony.service"
UNIT_DIR = "/etc/systemd/system"
SUDOERS_PATH = "/etc/sudoers.d/syncrig"
PTP_CONF_PATH = "/etc/syncrig/ptp4l.conf"
CHRONY_DROPIN_PATH = "/etc/chrony/conf.d/syncrig.conf"
GPIO_UDEV_PATH = "/etc/udev/rules.d/60-syncrig-gpio.rules"
GPIO_SYSUSERS_PATH = "/etc/sysusers.d/syncrig-gpio.conf"
GPIO_GROUP = "gpio"


@dataclass
class DeployOptions:
    """How to reach the Pis and where things go; the defaults are a real rig's."""

    ssh_port: int = 22
    key_filename: str | None = None
    known_hosts: str | None = None  # default ~/.ssh/known_hosts
    connect_timeout_s: float = 15.0
    install_packages: bool = True  # venv + pip install of the agent wheel
    start_services: bool = True  # install system files, enable + restart, verify
    verify_timeout_s: float = 60.0  # a Pi's agent may take tens of seconds to come up
    # Extra wheels to install from (no index): for Pis without internet access.
    wheelhouse: Path | None = None
    # Where pi-deploy/'s templates (systemd/, sudoers/, time/) are read from.
    templates: Path = PI_DEPLOY
    systemctl: str = "/usr/bin/systemctl"  # the path the sudoers rules name
    # The Pi's filesystem root as deploy sees it, like DESTDIR: "/" on a real Pi; a temporary
    # directory in the tests ("{camera}" is replaced by the camera's name, so cameras sharing
    # one test machine get their own). Rendered files name the runtime paths, never this.
    destdir: str = "/"
    workers: int = 8

    def validate(self) -> DeployOptions:
        if not _DESTDIR_RE.fullmatch(self.destdir) or ".." in self.destdir:
            raise ConfigError(
                f"destdir: an absolute path of letters, digits, '._-/' and {{camera}}: {self.destdir!r}"
            )
        if not 1 <= self.ssh_port <= 65535:
            raise ConfigError(f"ssh port: must be in 1..65535, got {self.ssh_port}")
        if not 0 < self.verify_timeout_s <= 3600:
            raise ConfigError(f"verify timeout: must be in (0, 3600] s, got {self.verify_timeout_s}")
        if not _SYSTEMCTL_RE.fullmatch(self.systemctl):
            raise ConfigError(f"systemctl: must be an absolute path, got {self.systemctl!r}")
        return self

    def destdir_for(self, camera: str) -> str:
        return self.destdir.replace("{camera}", camera)

    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts).expanduser() if self.known_hosts else default_known_hosts()


@dataclass(frozen=True)
class SystemFile:
    """A rendered file installed as root: `dest` is its path on the running Pi."""

    name: str  # file name in the staging directory: the destination's own name
    content: str
    dest: str
    mode: int


@dataclass
class CameraPlan:
    camera: CameraEntry
    install_dir: str
    data_dir: str
    agent_settings: dict
    files: list[SystemFile]  # units and time-sync configs (sudoers is separate: checked first)
    sudoers: SystemFile
    units: list[str]  # enabled + restarted in this order (time sync first, the agent last)
    restart_only: list[str] = field(default_factory=list)  # e.g. chrony.service (not ours to enable)
    # Left by an earlier deploy with another time_sync: stopped/removed when present.
    stale_units: list[str] = field(default_factory=list)
    stale_files: list[str] = field(default_factory=list)
    # Other servos of CLOCK_REALTIME (disabled when installed): two servos on one clock fight, and
    # phc2sys's Conflicts= only decides who wins at whichever starts last, boot included.
    competing_units: list[str] = field(default_factory=list)

    @property
    def secret_path(self) -> str:
        return posixpath.join(self.install_dir, "secret")

    @property
    def staging_dir(self) -> str:
        return posixpath.join(self.install_dir, "staged")

    def staged(self, f: SystemFile) -> str:
        return posixpath.join(self.staging_dir, f.name)

    def unit(self, name: str) -> str:
        return next(f.content for f in self.files if f.name == name)


def expand_home(path: str, home: str) -> str:
    return posixpath.join(home, path[2:]) if path.startswith("~/") else path


def _template(options: DeployOptions, rel: str, why: str) -> str:
    path = options.templates / rel
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{why} needs {path}, which this checkout does not have") from None


def gpio_access_files() -> list[SystemFile]:
    """The GPIO character devices to the `gpio` group, read/write (0660): the udev rule and the
    group itself (sysusers.d: created at boot too; deploy runs groupadd at once, steps.py)."""
    rule = (
        "# SyncRig: the agent drives TTL lines through /dev/gpiochip* as its own user (group gpio).\n"
        f'SUBSYSTEM=="gpio", KERNEL=="gpiochip[0-9]*", GROUP="{GPIO_GROUP}", MODE="0660"\n'
    )
    group = (
        f"# SyncRig: the group that owns /dev/gpiochip* (udev rule 60-syncrig-gpio.rules)\ng {GPIO_GROUP} -\n"
    )
    return [
        SystemFile(posixpath.basename(GPIO_UDEV_PATH), rule, GPIO_UDEV_PATH, 0o644),
        SystemFile(posixpath.basename(GPIO_SYSUSERS_PATH), group, GPIO_SYSUSERS_PATH, 0o644),
    ]


def plan_camera(config: RigConfig, cam: CameraEntry, home: str, options: DeployOptions) -> CameraPlan:
    install_dir = expand_home(config.pi_install_dir, home).rstrip("/")
    data_dir = expand_home(config.pi_data_dir, home).rstrip("/")
    values = {
        "USER": cam.ssh_user,
        "DIR": install_dir,
        "CAMERA": cam.name,
        "ROLE": cam.role,
        "IFACE": config.ptp_interface,
        "CONF": PTP_CONF_PATH,
        # chrony: clients follow cam0; cam0 follows the lab's NTP server when one is configured
        # (extra.ntp_upstream), else itself (an isolated rig: `local stratum` in the drop-in).
        "SERVER": (
            str(config.extra.get("ntp_upstream") or config.server.host)
            if cam.role == "server"
            else config.server.host
        ).strip("[]"),
        # TTL lines: the agent gets the gpio group (Raspberry Pi OS has it; deploy creates it elsewhere)
        "GROUPS": "systemd-journal gpio" if cam.ttl else "systemd-journal",
    }

    def render(rel: str, why: str) -> str:
        return render_template(_template(options, rel, why), values, rel)

    files = [
        SystemFile(
            AGENT_UNIT, render(f"systemd/{AGENT_UNIT}", "the agent"), f"{UNIT_DIR}/{AGENT_UNIT}", 0o644
        )
    ]
    units: list[str] = []
    restart_only: list[str] = []
    stale_units = [PHC2SYS_UNIT, PTP4L_UNIT]
    stale_files = [CHRONY_DROPIN_PATH]
    if config.time_sync == "ptp":
        why = "time_sync 'ptp'"
        grandmaster = config.ptp_grandmaster == "server" and cam.role == "server"
        conf = "time/ptp4l-grandmaster.conf" if grandmaster else "time/ptp4l.conf"
        files.append(SystemFile("ptp4l.conf", render(conf, why), PTP_CONF_PATH, 0o644))
        for unit in (PTP4L_UNIT, PHC2SYS_UNIT):
            files.append(SystemFile(unit, render(f"systemd/{unit}", why), f"{UNIT_DIR}/{unit}", 0o644))
        units += [PTP4L_UNIT, PHC2SYS_UNIT]
        stale_units = []
    elif config.time_sync == "chrony":
        dropin = render("time/chrony-syncrig.conf", "time_sync 'chrony'")
        files.append(SystemFile(posixpath.basename(CHRONY_DROPIN_PATH), dropin, CHRONY_DROPIN_PATH, 0o644))
        restart_only.append(CHRONY_UNIT)
        stale_files = []
    if cam.ttl:
        files += gpio_access_files()
    units.append(AGENT_UNIT)
    # With ptp4l the agent reads its state through pmc; the socket is root's, so that one query is
    # allowed through sudo (syncrig_agent.clock_state.readers.pmc_sudo_argv: one home for the line).
    privileged = [pmc_sudo_argv()] if config.time_sync == "ptp" else []
    competing = {
        "ptp": ["systemd-timesyncd.service", "chrony.service", "ntp.service", "ntpsec.service"],
        "chrony": ["systemd-timesyncd.service", "ntp.service", "ntpsec.service"],
    }.get(config.time_sync, [])
    commands = sudoers_commands(options.systemctl, units + restart_only, privileged)
    sudoers_values = {**values, "COMMANDS": commands}
    sudoers = SystemFile(
        "sudoers",
        render_template(
            _template(options, "sudoers/syncrig", "the sudoers drop-in"), sudoers_values, "sudoers"
        ),
        SUDOERS_PATH,
        0o440,
    )
    return CameraPlan(
        camera=cam,
        install_dir=install_dir,
        data_dir=data_dir,
        agent_settings=agent_settings_for(config, cam, install_dir, data_dir),
        files=files,
        sudoers=sudoers,
        units=units,
        restart_only=restart_only,
        stale_units=stale_units,
        stale_files=stale_files,
        competing_units=competing,
    )


def plan_rig(
    config: RigConfig, options: DeployOptions, home_of: Callable[[CameraEntry], str] | None = None
) -> list[CameraPlan]:
    """Every camera's plan; `home_of` gives a camera's home directory (default /home/USER, what a
    dry run shows; a deploy asks the Pi)."""
    config.validate()
    home = home_of or (lambda cam: f"/home/{cam.ssh_user}")
    return [plan_camera(config, cam, home(cam), options) for cam in config.cameras]
