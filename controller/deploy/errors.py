"""The deploy's errors: one per camera ends that camera's deploy with the step and the reason."""

from __future__ import annotations


class DeployError(RuntimeError):
    """A deploy that cannot go on; the message says why (and what to do, when we know)."""


class RemoteCommandError(DeployError):
    """A command on the Pi exited non-zero; the message carries its output."""
