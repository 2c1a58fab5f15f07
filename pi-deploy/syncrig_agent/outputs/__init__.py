"""Outputs: where encoded frames go. One file per kind; the encoder fans out to all of them."""

from syncrig_agent.outputs.base import Output
from syncrig_agent.outputs.local_file import LocalFileOutput, OutputExists

__all__ = ["LocalFileOutput", "Output", "OutputExists"]
