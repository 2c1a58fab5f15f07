"""Getting footage onto the desktop: transports to the Pis, verified resumable pull, gap fill
from the live stream, the ledger of what is verified, and collection around a recording."""

from controller.transfer.collect import Collection, local_sources, sftp_sources
from controller.transfer.ledger import footage_safe, read_ledger
from controller.transfer.pull import PullError, delete_pi_copy, download_file, pull_session
from controller.transfer.transports import (
    LocalTransport,
    SftpTransport,
    Transport,
    TransportError,
    sha256_file,
)

__all__ = [
    "Collection",
    "LocalTransport",
    "PullError",
    "SftpTransport",
    "Transport",
    "TransportError",
    "delete_pi_copy",
    "download_file",
    "footage_safe",
    "local_sources",
    "pull_session",
    "read_ledger",
    "sftp_sources",
    "sha256_file",
]
