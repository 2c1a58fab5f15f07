"""Deploying the agent to the Pis over SSH (install.sh → `syncrig deploy`, and the UI's "Deploy
settings"): plan.py decides what goes where, render.py fills the templates, wheel.py builds the
agent, ssh.py opens the checked SSH connection (for pull too) with hostkeys.py's policy, session.py
runs commands and copies files over it, steps.py is one camera's deploy,
verify.py asks cam0 whether every agent answers, runner.py runs the cameras in parallel."""

from controller.deploy.errors import DeployError, RemoteCommandError
from controller.deploy.hostkeys import (
    HostKeyChanged,
    HostKeyInfo,
    HostKeyUnknown,
    remember_host_key,
    scan_host_key,
)
from controller.deploy.plan import DeployOptions, plan_camera, plan_rig
from controller.deploy.runner import CameraResult, deploy_rig, select_cameras
from controller.deploy.wheel import build_agent_wheel

__all__ = [
    "CameraResult",
    "DeployError",
    "DeployOptions",
    "HostKeyChanged",
    "HostKeyInfo",
    "HostKeyUnknown",
    "RemoteCommandError",
    "build_agent_wheel",
    "deploy_rig",
    "plan_camera",
    "plan_rig",
    "remember_host_key",
    "scan_host_key",
    "select_cameras",
]
