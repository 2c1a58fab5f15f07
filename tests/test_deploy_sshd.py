"""install.sh / `syncrig deploy` / the UI's "Deploy settings" against real OpenSSH servers.

Three "Pis" on one machine: an sshd each on 127.0.0.1, .2 and .3 (own host key, SFTP starting in
its own home directory), each session's PATH starting with stand-ins for `sudo` (sessions already
run as root) and `systemctl` (records calls; starts the deployed agent's ExecStart for real, with
the synthetic backend). The Pi's system paths live under a temporary root per camera (destdir).
Real: ssh, SFTP, python3 -m venv --system-site-packages, pip, visudo (Debian's sudo package), the
agent processes and the authenticated check through cam0. Not real: systemd itself, a Pi's sudo
policy, picamera2 (see the report)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from controller.deploy import DeployError, DeployOptions, deploy_rig
from controller.deploy.plan import PI_DEPLOY
from controller.rig.cluster_link import ClusterLink
from controller.rig.config import CameraEntry, ConfigError, RigConfig, save_config
from controller.runtime import ControllerRuntime
from controller.web import create_app
from syncrig_agent.contract.protocol import load_secret, write_secret

from loopback_sshd import SshdUnavailable, check_sshd_available, free_port, loopback_sshd
from web_support import ApiClient

REPO = Path(__file__).resolve().parent.parent
SHIMS = Path(__file__).resolve().parent / "deploy_shims"
CAMERAS = ("cam0", "cam1", "cam2")
VISUDO = shutil.which("visudo") or "/usr/sbin/visudo"


def repack_installed(dist: str, out: Path) -> Path:
    """A wheel of an installed distribution of this test environment (the "Pi" gets av offline)."""
    d = importlib.metadata.distribution(dist)
    base = Path(d.locate_file(""))
    tag = next(
        line.split(":", 1)[1].strip() for line in d.read_text("WHEEL").splitlines() if line.startswith("Tag:")
    )
    name = d.metadata["Name"].replace("-", "_")
    path = out / f"{name}-{d.version}-{tag}.whl"
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in d.files or []:
            full = base / f
            if ".." in f.parts or "__pycache__" in f.parts or f.name in skip or not full.is_file():
                continue
            zf.write(full, f.as_posix())
            records.append(f"{f.as_posix()},,\n")
        info = next(f.parts[0] for f in d.files if f.parts[0].endswith(".dist-info"))
        zf.writestr(f"{info}/RECORD", "".join(records) + f"{info}/RECORD,,\n")
    return path


def stand_in_templates(d: Path, sudoers: str | None = None) -> Path:
    """pi-deploy/'s templates: the real agent unit and sudoers, stand-ins for the time-sync files
    (their real versions come from the clock-state work)."""
    (d / "systemd").mkdir(parents=True)
    (d / "time").mkdir()
    (d / "sudoers").mkdir()
    shutil.copy(PI_DEPLOY / "systemd" / "syncrig-agent.service", d / "systemd")
    (d / "sudoers" / "syncrig").write_text(sudoers or (PI_DEPLOY / "sudoers" / "syncrig").read_text())
    (d / "systemd" / "syncrig-ptp4l.service").write_text(
        "[Service]\nExecStart=/usr/sbin/ptp4l -f @CONF@ -i @IFACE@\n"
    )
    (d / "systemd" / "syncrig-phc2sys.service").write_text(
        "[Service]\nExecStart=/usr/sbin/phc2sys -s @IFACE@ -c CLOCK_REALTIME -w\n"
    )
    (d / "time" / "ptp4l.conf").write_text("[global]\nslaveOnly 1\n")
    (d / "time" / "ptp4l-grandmaster.conf").write_text("[global]\npriority1 1\n")
    (d / "time" / "chrony-syncrig.conf").write_text("refclock PHC /dev/ptp0 poll 0\nhwtimestamp @IFACE@\n")
    return d


def kill_agents(root: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int((root / "agent.pid").read_text()), signal.SIGTERM)


@pytest.fixture(scope="module")
def pis(tmp_path_factory):
    try:
        check_sshd_available()
    except SshdUnavailable as exc:
        pytest.skip(f"DEPLOY TESTS NOT RUN: {exc}")
    if not Path(VISUDO).exists():
        pytest.skip("DEPLOY TESTS NOT RUN: visudo missing (tools/run-tests apt-installs sudo as root)")
    tmp = tmp_path_factory.mktemp("pis")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for shim in ("sudo", "systemctl"):
        (bin_dir / shim).symlink_to(SHIMS / shim)
    # The "Pi's" python3: the interpreter this test environment's venv is built on, whose own
    # site-packages (numpy) play the part of Raspberry Pi OS's python3-numpy.
    (bin_dir / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    wheelhouse = tmp / "wheelhouse"
    wheelhouse.mkdir()
    repack_installed("av", wheelhouse)
    port = free_port()
    keys = tmp / "keys"
    keys.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client_key")], check=True
    )
    known = []
    roots = {}
    with contextlib.ExitStack() as stack:
        for i, cam in enumerate(CAMERAS):
            root, home, d = tmp / f"root-{cam}", tmp / f"home-{cam}", tmp / f"sshd-{cam}"
            for p in (root, home, d):
                p.mkdir()
            shutil.copy(keys / "client_key", d)
            shutil.copy(keys / "client_key.pub", d)
            env = {
                "PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SYNCRIG_TEST_ROOT": str(root),
            }
            info = stack.enter_context(loopback_sshd(d, f"127.0.0.{i + 1}", port, env, home))
            known.append(Path(info["known_hosts"]).read_text())
            roots[cam] = root
            stack.callback(kill_agents, root)
        (tmp / "known_hosts").write_text("".join(known))
        write_secret(tmp / "secret")
        yield {
            "tmp": tmp,
            "port": port,
            "key": str(keys / "client_key"),
            "known_hosts": tmp / "known_hosts",
            "roots": roots,
            "homes": {c: tmp / f"home-{c}" for c in CAMERAS},
            "wheelhouse": wheelhouse,
            "templates": stand_in_templates(tmp / "templates"),
            "secret": tmp / "secret",
        }


@pytest.fixture(scope="module")
def rig(pis) -> RigConfig:
    cams = [
        CameraEntry(c, f"127.0.0.{i + 1}", "server" if i == 0 else "client", "root", preview_port=free_port())
        for i, c in enumerate(CAMERAS)
    ]
    return RigConfig(
        cameras=cams,
        fps=30.0,
        width=320,
        height=240,
        bitrate=1_000_000,
        control_port=free_port(),
        fanout_port=free_port(),
        pi_install_dir="~/syncrig",
        pi_data_dir="~/recordings",
        secret_file=str(pis["secret"]),
        time_sync="ptp",
        ptp_interface="eth1",
    )


def options(pis, **kw) -> DeployOptions:
    base = {
        "ssh_port": pis["port"],
        "key_filename": pis["key"],
        "known_hosts": str(pis["known_hosts"]),
        "wheelhouse": pis["wheelhouse"],
        "templates": pis["templates"],
        "destdir": str(pis["tmp"] / "root-{camera}"),
        "verify_timeout_s": 40.0,
    }
    return DeployOptions(**{**base, **kw})


def calls(root: Path, name: str = "systemctl.calls") -> list:
    path = root / name
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines] if name.endswith("systemctl.calls") else lines


def deploy_cli(pis, config_path: Path, *extra: str, known_hosts: Path | None = None):
    argv = ["bash", str(REPO / "install.sh"), "--config", str(config_path), "--ssh-port", str(pis["port"])]
    argv += ["--identity", pis["key"], "--known-hosts", str(known_hosts or pis["known_hosts"])]
    argv += ["--templates", str(pis["templates"]), "--destdir", str(pis["tmp"] / "root-{camera}")]
    return subprocess.run(
        [*argv, *extra], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def test_install_sh_deploys_three_cameras_in_parallel(pis, rig) -> None:
    config_path = save_config(pis["tmp"] / "rig.json", rig)
    # cam1's OS ships systemd-timesyncd: a second servo of the same clock, so deploy disables it.
    vendor_units = pis["roots"]["cam1"] / "lib/systemd/system"
    vendor_units.mkdir(parents=True, exist_ok=True)
    (vendor_units / "systemd-timesyncd.service").write_text("[Unit]\nDescription=stand-in\n")
    started = time.monotonic()
    r = deploy_cli(pis, config_path, "--wheelhouse", str(pis["wheelhouse"]), "--verify-timeout", "40")
    elapsed = time.monotonic() - started
    print(f"\ninstall.sh, 3 cameras to loopback sshd (venv + pip + units + verify): {elapsed:.1f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    table = [line.split() for line in r.stdout.splitlines() if line.startswith("cam") and " ok " in line]
    print(r.stdout)
    assert sorted((row[0], row[2]) for row in table) == [("cam0", "ok"), ("cam1", "ok"), ("cam2", "ok")]
    secret = load_secret(pis["secret"])
    for cam in CAMERAS:
        home, root = pis["homes"][cam], pis["roots"][cam]
        base = home / "syncrig"
        agent = json.loads((base / "agent.json").read_text())
        assert agent["name"] == cam and agent["backend"] == "picamera2"
        assert agent["secret_file"] == str(base / "secret") and agent["data_dir"] == str(home / "recordings")
        assert stat.S_IMODE((base / "secret").stat().st_mode) == 0o600
        assert load_secret(base / "secret") == secret
        # The wheel is what runs: installed in the venv, which also sees the system's numpy.
        probe = subprocess.run(
            [
                str(base / "venv/bin/python"),
                "-c",
                "import syncrig_agent, numpy; print(syncrig_agent.__file__)",
            ],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert probe.returncode == 0 and "site-packages" in probe.stdout, probe.stderr
        assert "include-system-site-packages = true" in (base / "venv/pyvenv.cfg").read_text()
        unit = (root / "etc/systemd/system/syncrig-agent.service").read_text()
        assert f"WorkingDirectory={base}\n" in unit and "User=root\n" in unit
        assert f"ExecStart={base}/venv/bin/python -m syncrig_agent --config {base}/agent.json" in unit
        ptp4l = (root / "etc/systemd/system/syncrig-ptp4l.service").read_text()
        assert "-f /etc/syncrig/ptp4l.conf -i eth1" in ptp4l and "@" not in ptp4l
        assert "-s eth1 " in (root / "etc/systemd/system/syncrig-phc2sys.service").read_text()
        conf = (root / "etc/syncrig/ptp4l.conf").read_text()
        assert ("priority1 1" in conf) == (cam == "cam0")  # cam0 is the grandmaster
        sudoers = root / "etc/sudoers.d/syncrig"
        assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440 and sudoers.stat().st_uid == 0
        text = sudoers.read_text()
        assert "root ALL=(root) NOPASSWD: SYNCRIG_SERVICES" in text
        assert "/usr/bin/systemctl restart syncrig-agent.service" in text and "*" not in text
        assert subprocess.run([VISUDO, "-c", "-f", str(sudoers)], capture_output=True).returncode == 0
        assert not list((root / "etc/sudoers.d").glob("*.new"))
        competing = [["disable", "--now", "systemd-timesyncd.service"]] if cam == "cam1" else []
        assert calls(root) == [
            *competing,
            ["daemon-reload"],
            ["enable", "syncrig-ptp4l.service", "syncrig-phc2sys.service", "syncrig-agent.service"],
            ["restart", "syncrig-ptp4l.service", "syncrig-phc2sys.service", "syncrig-agent.service"],
            ["is-active", "syncrig-agent.service"],
        ]
        sudo = calls(root, "sudo.calls")
        assert sudo[0] == f"visudo -c -f {base}/staged/sudoers"  # checked before anything installed
        assert sudo.index(f"visudo -c -f {base}/staged/sudoers") < min(
            i for i, c in enumerate(sudo) if c.startswith("install ")
        )
    # Independently of the deploy's own check: cam0 answers with the secret, both clients joined.
    with ClusterLink(("127.0.0.1", rig.control_port), secret) as link:
        clients = link.status()["clients"]
    assert {n for n, c in clients.items() if c["connected"]} == {"cam1", "cam2"}


def test_metacharacters_are_refused_before_any_connection(pis, rig) -> None:
    log = pis["tmp"] / "sshd-cam1" / "sshd.log"
    before = log.stat().st_size
    bad_values = [
        ("cameras[0].name", lambda d: d["cameras"][0].update(name="cam0;touch pwned")),
        ("cameras[1].host", lambda d: d["cameras"][1].update(host="127.0.0.2$(touch pwned)")),
        ("cameras[1].ssh_user", lambda d: d["cameras"][1].update(ssh_user="root`id`")),
        ("pi_install_dir", lambda d: d.update(pi_install_dir="~/syncrig; touch pwned")),
        ("pi_data_dir", lambda d: d.update(pi_data_dir="/data/$HOME")),
        ("pi_install_dir", lambda d: d.update(pi_install_dir="syncrig")),  # relative: not a unit path
        ("ptp_interface", lambda d: d.update(ptp_interface="eth0 -f /etc/shadow")),
    ]
    for i, (field, spoil) in enumerate(bad_values):
        data = rig.to_dict()
        spoil(data)
        path = pis["tmp"] / f"bad{i}.json"
        path.write_text(json.dumps(data))
        if i < 2:  # through install.sh itself
            r = deploy_cli(pis, path)
            assert r.returncode == 2 and field in r.stderr, r.stderr
        else:
            with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
                RigConfig.from_dict(data)
    assert log.stat().st_size == before  # nobody connected
    assert not list(pis["tmp"].rglob("pwned")) and not (Path.cwd() / "pwned").exists()


def test_unknown_host_key_needs_confirmation(pis, rig) -> None:
    config = RigConfig.from_dict({**rig.to_dict(), "pi_install_dir": "~/syncrig-hostkey"})
    config_path = save_config(pis["tmp"] / "hostkey.json", config)
    empty = pis["tmp"] / "known_hosts.empty"
    empty.write_text("")
    r = deploy_cli(pis, config_path, "--camera", "cam1", "--no-packages", "--no-service", known_hosts=empty)
    assert r.returncode == 1
    assert "not in" in r.stdout + r.stderr and "SHA256:" in r.stdout + r.stderr
    assert "not a terminal" in r.stdout
    assert not (pis["homes"]["cam1"] / "syncrig-hostkey").exists()
    assert empty.read_text() == ""
    # Confirmed (here by the flag; the fingerprint is printed), it is remembered and used.
    r = deploy_cli(
        pis,
        config_path,
        "--camera",
        "cam1",
        "--no-packages",
        "--no-service",
        "--accept-new-host-keys",
        known_hosts=empty,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    host_pub = (pis["tmp"] / "sshd-cam1" / "host_key.pub").read_text().split()
    assert empty.read_text() == f"[127.0.0.2]:{pis['port']} {host_pub[0]} {host_pub[1]}\n"
    assert (pis["homes"]["cam1"] / "syncrig-hostkey" / "agent.json").exists()


def on_a_terminal(argv: list[str], answer: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run argv with a pty as its terminal, answering each y/N question with `answer`."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if out.endswith(b"[y/N] "):
                os.write(master, answer.encode() + b"\n")
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_unknown_host_key_is_asked_about_on_a_terminal(pis, rig) -> None:
    config = RigConfig.from_dict({**rig.to_dict(), "pi_install_dir": "~/syncrig-tty"})
    config_path = save_config(pis["tmp"] / "tty.json", config)
    known = pis["tmp"] / "known_hosts.tty"
    known.write_text("")
    argv = [sys.executable, "-m", "controller", "deploy", "--config", str(config_path), "--camera", "cam2"]
    argv += ["--ssh-port", str(pis["port"]), "--identity", pis["key"], "--known-hosts", str(known)]
    argv += ["--no-packages", "--no-service", "--templates", str(pis["templates"])]
    host_pub = (pis["tmp"] / "sshd-cam2" / "host_key.pub").read_text().split()
    code, out = on_a_terminal(argv, "n")
    assert code == 1 and f"{host_pub[0]} SHA256:" in out and "not confirmed" in out, out
    assert known.read_text() == "" and not (pis["homes"]["cam2"] / "syncrig-tty").exists()
    code, out = on_a_terminal(argv, "y")
    assert code == 0, out
    assert known.read_text() == f"[127.0.0.3]:{pis['port']} {host_pub[0]} {host_pub[1]}\n"
    assert (pis["homes"]["cam2"] / "syncrig-tty" / "agent.json").exists()


def test_changed_host_key_is_refused(pis, rig) -> None:
    config_path = save_config(pis["tmp"] / "changed.json", rig)
    other = pis["tmp"] / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ecdsa = pis["tmp"] / "ecdsakey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True)
    for key in (other, ecdsa):  # a different key, or only a key of another type remembered
        pub = Path(f"{key}.pub").read_text().split()
        known = pis["tmp"] / f"known_hosts.{key.name}"
        known.write_text(f"[127.0.0.2]:{pis['port']} {pub[0]} {pub[1]}\n")
        before = calls(pis["roots"]["cam1"])
        r = deploy_cli(pis, config_path, "--camera", "cam1", "--accept-new-host-keys", known_hosts=known)
        assert r.returncode == 1 and "HOST KEY CHANGED" in r.stdout, r.stdout + r.stderr
        assert calls(pis["roots"]["cam1"]) == before
        assert known.read_text().count("\n") == 1  # not "fixed" behind the user's back
        # The deploy connection itself refuses too (a key swapped after the check).
        (result,) = deploy_rig(
            rig, load_secret(pis["secret"]), options(pis, known_hosts=str(known)), ["cam1"]
        )
        assert not result.ok and result.step == "connect" and "HOST KEY CHANGED" in result.message


def test_sudoers_failing_visudo_fails_the_camera_and_installs_nothing(pis, rig) -> None:
    templates = stand_in_templates(
        pis["tmp"] / "bad-templates", sudoers="@USER@ ALL=(root) NOPASSWD: systemctl restart x\nnot sudoers\n"
    )
    destdir = pis["tmp"] / "fresh-root-{camera}"
    before = {c: calls(pis["roots"][c]) for c in ("cam1", "cam2")}
    results = deploy_rig(
        rig,
        load_secret(pis["secret"]),
        options(pis, templates=templates, destdir=str(destdir), install_packages=False),
        ["cam1", "cam2"],
    )
    for r in results:
        assert not r.ok and r.step == "sudoers", r
        assert "visudo" in r.message and "syntax error" in r.message and "nothing installed" in r.message
        assert not Path(str(destdir).replace("{camera}", r.camera)).exists()
        assert calls(pis["roots"][r.camera]) == before[r.camera]  # no systemctl call at all


def test_deploy_from_the_ui(pis, rig) -> None:
    config = RigConfig.from_dict(rig.to_dict())
    config_path = save_config(pis["tmp"] / "ui-rig.json", config)
    known = pis["tmp"] / "known_hosts.ui"
    # cam2's key is not known yet: the first deploy asks for it.
    known.write_text("".join(pis["known_hosts"].read_text().splitlines(keepends=True)[:2]))
    runtime = ControllerRuntime(config_path, sessions_root=pis["tmp"] / "sessions").start()
    # Packages were installed by the install.sh test; this one exercises the job, not pip again.
    runtime.deploy_options = options(pis, known_hosts=str(known), install_packages=False)
    try:
        api = ApiClient(create_app(runtime))
        page = api.get("/settings").get_data(as_text=True)
        assert 'id="deploy-start"' in page and 'id="deploy-hostkeys"' in page
        assert api.post("/api/settings/deploy", {}).status_code == 400  # needs the confirmation
        r = api.post("/api/settings/deploy", {"confirm": True})
        assert r.status_code == 200, r.get_json()
        job = api.wait_job(r.get_json()["job_id"], timeout=60)
        assert job["state"] == "done", job
        (pending,) = job["result"]["needs_confirmation"]
        assert pending["camera"] == "cam2" and pending["fingerprint"].startswith("SHA256:")
        assert api.get_json("/api/settings/hostkeys")["pending"] == [pending]
        wrong = api.post("/api/settings/hostkeys", {"camera": "cam2", "fingerprint": "SHA256:AAAA"})
        assert wrong.status_code == 409 and "not the one shown" in wrong.get_json()["error"]
        ok = api.post("/api/settings/hostkeys", {"camera": "cam2", "fingerprint": pending["fingerprint"]})
        assert ok.status_code == 200 and ok.get_json()["status"] == "remembered"
        agents_before = {c: (pis["roots"][c] / "agent.pid").read_text() for c in CAMERAS}
        started = time.monotonic()
        r = api.post("/api/settings/deploy", {"confirm": True})
        job = api.wait_job(r.get_json()["job_id"], timeout=90)
        print(f"\nredeploy of 3 cameras from the UI (no pip step): {time.monotonic() - started:.1f} s")
        assert job["state"] == "done" and job["result"]["ok"], job
        assert [(c["camera"], c["ok"], c["step"]) for c in job["result"]["cameras"]] == [
            (c, True, "done") for c in CAMERAS
        ]
        assert any("cam1: restarting services" in line for line in job["log"])
        for cam in CAMERAS:  # every agent was restarted by this deploy
            assert (pis["roots"][cam] / "agent.pid").read_text() != agents_before[cam]
    finally:
        runtime.close()


def test_deploy_refuses_while_cam0_records(pis, rig) -> None:
    secret = load_secret(pis["secret"])
    before = {c: calls(pis["roots"][c]) for c in CAMERAS}
    with ClusterLink(("127.0.0.1", rig.control_port), secret) as link:
        link.start("20260101T000000Z-1_deploy_test", 33_333_333, 30.0, {c: c for c in CAMERAS}, frames=300)
        try:
            with pytest.raises(DeployError, match="recording"):
                deploy_rig(rig, secret, options(pis), None)
        finally:
            link.stop()
    assert {c: calls(pis["roots"][c]) for c in CAMERAS} == before  # no agent was touched


def test_restart_one_camera_from_the_ui_through_the_sudoers_rule(pis, rig) -> None:
    """The "Restart agent" button on a real rig: SSH in, `sudo -n <systemctl> restart syncrig-agent.service`,
    exactly the line deploy's sudoers drop-in allows (here the stand-in systemctl's path)."""
    config_path = save_config(pis["tmp"] / "restart-rig.json", RigConfig.from_dict(rig.to_dict()))
    runtime = ControllerRuntime(config_path, sessions_root=pis["tmp"] / "sessions").start()
    shim = str(pis["tmp"] / "bin" / "systemctl")
    runtime.deploy_options = options(pis, systemctl=shim)
    root = pis["roots"]["cam1"]
    before = (root / "agent.pid").read_text()
    try:
        api = ApiClient(create_app(runtime))
        job = api.wait_job(api.post("/api/cameras/cam1/restart").get_json()["job_id"], timeout=60)
        assert job["state"] == "done" and job["result"] == {"camera": "cam1", "how": "systemd"}, job
    finally:
        runtime.close()
    assert calls(root, "sudo.calls")[-1] == f"{shim} restart syncrig-agent.service"
    assert calls(root)[-1] == ["restart", "syncrig-agent.service"]
    assert (root / "agent.pid").read_text() != before
