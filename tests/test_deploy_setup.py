"""Deploy inputs without SSH: template rendering refuses what could become a directive, the plan
per time_sync, the agent wheel, and setup (flags, interactive on a terminal, the secret file)."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from test_deploy_sshd import stand_in_templates

from controller.cli.main import main
from controller.deploy import DeployOptions, build_agent_wheel, plan_rig
from controller.deploy.render import RenderError, render_template
from controller.rig.config import CameraEntry, ConfigError, RigConfig, load_config
from syncrig_agent.clock_state.readers import pmc_sudo_argv
from syncrig_agent.contract.protocol import load_secret


def test_render_fills_every_placeholder_and_refuses_unsafe_values() -> None:
    assert render_template("ExecStart=@DIR@/x -i @IFACE@\n", {"DIR": "/opt/a", "IFACE": "eth0"}) == (
        "ExecStart=/opt/a/x -i eth0\n"
    )
    with pytest.raises(RenderError, match="@CONF@"):
        render_template("x @CONF@ @DIR@", {"DIR": "/a"})
    for bad in ("/a\nExecStartPre=/bin/sh", "%h", "$HOME", "a'b", 'a"b', "a;b", "a\\b", "a\tb"):
        with pytest.raises(RenderError, match="unsafe value"):
            render_template("WorkingDirectory=@DIR@", {"DIR": bad})


def rig(**kw) -> RigConfig:
    cams = [CameraEntry("cam0", "10.0.0.10", "server"), CameraEntry("cam1", "10.0.0.11", ssh_user="lab")]
    return RigConfig(cameras=cams, **kw)


def test_plan_per_time_sync(tmp_path: Path) -> None:
    templates = stand_in_templates(tmp_path / "t")
    opts = DeployOptions(templates=templates)
    none = plan_rig(rig(), opts)
    assert [f.dest for f in none[0].files] == ["/etc/systemd/system/syncrig-agent.service"]
    assert none[0].units == ["syncrig-agent.service"]
    assert none[0].stale_units == ["syncrig-phc2sys.service", "syncrig-ptp4l.service"]
    assert none[1].sudoers.mode == 0o440 and none[1].sudoers.dest == "/etc/sudoers.d/syncrig"
    assert "lab ALL=(root) NOPASSWD: SYNCRIG_SERVICES" in none[1].sudoers.content
    ptp = plan_rig(rig(time_sync="ptp", ptp_grandmaster="bmca"), opts)
    assert ptp[0].units == ["syncrig-ptp4l.service", "syncrig-phc2sys.service", "syncrig-agent.service"]
    assert all("slaveOnly" in p.files[1].content for p in ptp)  # BMCA: one config for all
    assert "/usr/bin/systemctl restart syncrig-phc2sys.service" in ptp[0].sudoers.content
    chrony = plan_rig(rig(time_sync="chrony", ptp_interface="end0"), opts)
    dropin = next(f for f in chrony[0].files if f.dest == "/etc/chrony/conf.d/syncrig.conf")
    assert "hwtimestamp end0" in dropin.content and chrony[0].restart_only == ["chrony.service"]
    assert "/usr/bin/systemctl restart chrony.service" in chrony[0].sudoers.content
    # The real checkout may not carry the time-sync templates yet: said clearly, not a KeyError.
    (templates / "time" / "ptp4l.conf").unlink()
    with pytest.raises(ConfigError, match="ptp4l.conf"):
        plan_rig(rig(time_sync="ptp", ptp_grandmaster="bmca"), opts)
    with pytest.raises(ConfigError, match="destdir"):
        DeployOptions(destdir="/tmp/x; rm -rf /").validate()


def test_shipped_time_sync_templates_render_completely(tmp_path: Path) -> None:
    """The real pi-deploy/ templates (not stand-ins): every placeholder filled, the grandmaster
    config on cam0 only, chrony clients following cam0, and a sudoers drop-in that allows the
    agent's one privileged pmc query verbatim and passes the real visudo."""
    ptp = plan_rig(rig(time_sync="ptp", ptp_grandmaster="server"), DeployOptions())
    for cam in ptp:
        for f in [*cam.files, cam.sudoers]:
            assert not re.search(r"@[A-Z]+@", f.content), (cam.camera.name, f.name)
    assert "masterOnly" in ptp[0].files[1].content and "masterOnly" not in ptp[1].files[1].content
    pmc_line = " ".join(pmc_sudo_argv())
    assert "-i /var/run/syncrig-pmc GET TIME_STATUS_NP" in pmc_line and "*" not in pmc_line
    assert pmc_line in ptp[1].sudoers.content
    visudo = shutil.which("visudo") or ("/usr/sbin/visudo" if Path("/usr/sbin/visudo").exists() else None)
    if visudo is None:
        pytest.skip("visudo missing (Debian package sudo): the rendered sudoers drop-in was not checked")
    for cam in ptp:
        drop_in = tmp_path / f"sudoers-{cam.camera.name}"
        drop_in.write_text(cam.sudoers.content)
        drop_in.chmod(0o440)
        check = subprocess.run([visudo, "-c", "-f", str(drop_in)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    chrony = plan_rig(rig(time_sync="chrony", extra={"ntp_upstream": "ntp.lab.example"}), DeployOptions())
    server_line = [
        [line for line in f.content.splitlines() if line.startswith("server ")]
        for cam in chrony
        for f in cam.files
        if f.dest.endswith("syncrig.conf")
    ]
    assert server_line[0][0].split()[1] == "ntp.lab.example"  # cam0 follows the lab's server
    assert server_line[1][0].split()[1] == "10.0.0.10"  # clients follow cam0
    assert " ".join(pmc_sudo_argv()) not in chrony[1].sudoers.content  # no ptp4l: no pmc rule
    # One servo per clock: the others are disabled where installed.
    assert (
        "systemd-timesyncd.service" in ptp[0].competing_units and "chrony.service" in ptp[1].competing_units
    )
    assert "chrony.service" not in chrony[0].competing_units


def test_agent_wheel_is_reproducible_and_versioned_by_content(tmp_path: Path) -> None:
    a = build_agent_wheel(tmp_path / "a")
    b = build_agent_wheel(tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert a.name.startswith("syncrig_agent-0.1.0+g") and a.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "syncrig_agent/server.py" in names and "syncrig_agent/timing/precise_wait.c" in names
    assert "Requires-Dist: numpy>=1.24" in meta and "Requires-Dist: av>=12.0" in meta
    src = tmp_path / "src" / "syncrig_agent"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("x = 1\n")
    first = build_agent_wheel(tmp_path / "c", root=src).name
    (src / "__init__.py").write_text("x = 2\n")
    assert build_agent_wheel(tmp_path / "d", root=src).name != first  # changed code: an upgrade to pip


@pytest.fixture
def setup_cli(capsys):
    """`syncrig setup ...` in this process (stdin is not a terminal under pytest)."""

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(["setup", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_setup_flags_secret_permissions_and_force(tmp_path: Path, setup_cli) -> None:
    cfg = tmp_path / "conf" / "rig.json"
    r = setup_cli("--config", str(cfg), "--camera", "cam0=pi@10.0.0.10", "--time-sync", "chrony")
    assert r.returncode == 0, r.stderr
    secret = cfg.parent / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and load_config(cfg).time_sync == "chrony"
    original = load_secret(secret)
    assert setup_cli("--config", str(cfg), "--camera", "cam0=pi@h").returncode == 1  # no --force
    r = setup_cli("--config", str(cfg), "--camera", "cam0=pi@10.0.0.10", "--rotate-secret")
    assert r.returncode == 2 and "--force" in r.stderr
    # A secret that others could read is repaired to 0600 (and the user told to rotate it).
    os.chmod(secret, 0o644)
    r = setup_cli("--config", str(cfg), "--camera", "cam0=pi@10.0.0.11", "--force")
    assert r.returncode == 0 and "repaired to 0600" in r.stdout, r.stdout + r.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and load_secret(secret) == original
    r = setup_cli("--config", str(cfg), "--camera", "cam0=pi@10.0.0.11", "--force", "--rotate-secret")
    assert r.returncode == 0 and "./install.sh" in r.stdout and "NEW shared secret" in r.stdout
    assert load_secret(secret) != original and stat.S_IMODE(secret.stat().st_mode) == 0o600
    # A symlink planted where the secret goes is refused, never followed.
    other = tmp_path / "other"
    (other / "elsewhere").parent.mkdir()
    (other / "elsewhere").write_text("x" * 64)
    cfg2 = other / "conf" / "rig.json"
    cfg2.parent.mkdir()
    (cfg2.parent / "secret").symlink_to(other / "elsewhere")
    r = setup_cli("--config", str(cfg2), "--camera", "cam0=pi@10.0.0.10")
    assert r.returncode == 2 and "not a regular file" in r.stderr and not cfg2.exists()
    for bad in ("--pi-install-dir=~/a;b", "--pi-data-dir=rel/dir", "--ptp-interface=eth0 -x"):
        r = setup_cli("--config", str(tmp_path / "bad.json"), "--camera", "cam0=pi@h", bad)
        assert r.returncode == 2 and not (tmp_path / "bad.json").exists(), r.stderr


def test_setup_asks_on_a_terminal(tmp_path: Path) -> None:
    cfg = tmp_path / "rig.json"
    answers = [
        "2",  # cameras
        "cam0", "10.0.0.10", "pi",
        "cam 1", "10.0.0.11", "pi",  # refused (space), asked again
        "cam1", "10.0.0.11", "lab",
        "50", "1280", "720",
        "ptp", "end0", "bmca",
    ]  # fmt: skip
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "setup", "--config", str(cfg)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    pending = list(answers)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            # Answer each prompt as it appears (prompts end with ": ").
            while pending and out.rstrip().endswith(b":") and out.count(b"]: ") > len(answers) - len(pending):
                os.write(master, pending.pop(0).encode() + b"\n")
        if proc.poll() is not None and not ready:
            break
    proc.wait(10)
    os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "refused: cameras[1].name" in text
    config = load_config(cfg)
    assert [(c.name, c.host, c.ssh_user, c.role) for c in config.cameras] == [
        ("cam0", "10.0.0.10", "pi", "server"),
        ("cam1", "10.0.0.11", "lab", "client"),
    ]
    assert (config.fps, config.width, config.height) == (50.0, 1280, 720)
    assert (config.time_sync, config.ptp_interface, config.ptp_grandmaster) == ("ptp", "end0", "bmca")
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
