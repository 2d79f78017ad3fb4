"""Writes that a full disk or a kill cannot tear: every run file, report and catalog goes through here.

``atomic_write_text`` writes a temporary file beside the target, fsyncs it and renames it over
the target, so a reader sees the old file or the new one, never half of one; when the write fails
(a full disk, a quota) the temporary file is removed and the target is untouched.

A run file is rewritten after every cell, and a full disk would leave no room to write the last
version, the one whose status says why the run ended. ``Reserve`` keeps that room: a file of
``reserve_bytes`` set aside beside the run file (unnamed, so nothing is left behind), grown as
the run file grows and given back just before the final write. Growing it is also how a filling
disk is noticed before anything is lost.
"""

from __future__ import annotations

import errno
import os
import tempfile
import weakref
from pathlib import Path
from typing import Any

__all__ = ["DISK_FULL_ERRNOS", "Reserve", "atomic_write_text", "is_disk_full", "reserve_bytes"]

#: errno values meaning "no room": a full file system or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Room kept beyond twice the file's size, for the cell being written when the disk fills.
RESERVE_SLACK_BYTES = 1 << 20


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError meaning the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically; on failure the old file is untouched."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reserve_bytes(text_bytes: int) -> int:
    """Room for the final write: the file once more, and a cell's worth beyond it."""
    return 2 * text_bytes + RESERVE_SLACK_BYTES


class Reserve:
    """Disk space set aside beside ``path`` for the last write of that file.

    The space is an unnamed file (created and unlinked at once), held open by descriptor: closing
    it gives the space back, and so does the kernel when the process dies, even by SIGKILL, so a
    killed run leaves no reserve behind.
    """

    def __init__(self, path: Path) -> None:
        self.folder = path.parent
        self.size = 0
        self._fd: int | None = None
        self._closer: weakref.finalize[Any, Any] | None = None

    def ensure(self, size: int) -> None:
        """Hold at least ``size`` bytes; raises OSError (see ``is_disk_full``) when there is no room."""
        if size <= self.size:
            return
        if self._fd is None:
            fd, name = tempfile.mkstemp(prefix=".siliconbench-reserve-", dir=self.folder)
            os.unlink(name)
            self._fd = fd
            self._closer = weakref.finalize(self, os.close, fd)  # a writer dropped unfinished
        os.posix_fallocate(self._fd, 0, size)
        self.size = size

    def release(self) -> None:
        """Give the space back (before the final write)."""
        if self._closer is not None:
            self._closer()  # closes the descriptor once
        self._fd, self._closer = None, None
        self.size = 0
