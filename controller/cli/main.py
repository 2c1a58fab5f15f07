"""The `syncrig` command (also `python -m controller`): one parser, each command registered by its
module in controller/cli/ (which also sets the command's handler), and one dispatcher."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from controller.cli.align import add_align_command
from controller.cli.board import add_board_commands
from controller.cli.calibrate import add_calibrate_command, add_intrinsics_command
from controller.cli.dataset import add_dataset_commands
from controller.cli.deploy import add_deploy_command
from controller.cli.footage import add_footage_commands
from controller.cli.pipeline import add_pipeline_commands
from controller.cli.process import add_process_command
from controller.cli.record import add_record_command
from controller.cli.serve import add_serve_commands
from controller.cli.setup import add_setup_command
from syncrig_agent.main import add_agent_arguments, run_agent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncrig", description="Frame-synchronized multi-camera recording.")
    sub = parser.add_subparsers(dest="command", required=True)

    # The agent's options live with the agent: a Pi runs it without the controller installed.
    agent = sub.add_parser("agent", help="run the Pi-side capture agent (what systemd starts)")
    add_agent_arguments(agent)
    agent.set_defaults(handler=run_agent)

    add_record_command(sub)
    add_footage_commands(sub)  # receive, pull, transcode, footage-check
    add_setup_command(sub)  # setup.sh
    add_deploy_command(sub)  # install.sh
    add_serve_commands(sub)  # demo, controller
    add_pipeline_commands(sub)  # sync, trim, verify
    add_dataset_commands(sub)  # pose, triangulate, export
    add_board_commands(sub)  # board, detect
    add_calibrate_command(sub)
    add_process_command(sub)  # the dataset steps on a Ray cluster
    add_align_command(sub)  # external recordings onto the session clock (TTL)
    add_intrinsics_command(sub)  # per-camera intrinsics from pictures or a video
    return parser


def run_command(args: argparse.Namespace) -> int:
    if args.command != "agent":  # the agent sets up its own logging (journald on a Pi)
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args.handler(args)


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status.

    A reader that closes early (`syncrig sync ... | head -1`) ends the command quietly with status 1,
    as in the Python docs' recipe (library/signal.html, "Note on SIGPIPE"), not with a traceback."""
    try:
        try:
            return run_command(build_parser().parse_args(argv))
        finally:
            # Flush here so that a closed pipe fails inside this try, not in the interpreter's exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout once more at exit: point it at /dev/null so that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
