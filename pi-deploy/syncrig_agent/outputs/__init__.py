"""Outputs: where encoded frames go. One file per kind; the encoder fans out to all of them."""

from .base import Output
from .local_file import LocalFileOutput, OutputExists

__all__ = ["LocalFileOutput", "Output", "OutputExists"]
