"""Writes that a full disk or a kill cannot tear: every run file, report and catalog goes through here.

``atomic_write_text`` writes a temporary file beside the target, fsyncs it and renames it over
the target, so a reader sees the old file or the new one, never half of one; when the write fails
(a full disk, a quota) the temporary file is removed and the target is untouched.

A run file is rewritten after every cell, and a full disk would leave no room to write the last
version, the one whose status says why the run ended. ``Reserve`` keeps that room: an unnamed file
beside the run file (``O_TMPFILE`` where the file system has it), grown *before* each new version
is written, to at least what the final write of that version needs and, where the disk allows, a
cell's worth more. The final write goes *into* that file (written, truncated to its length, given a
name, renamed over the run file), so the room is never handed back for another writer on the same
disk to take first. Only the minimum is demanded: a disk with room for one cell but not for the
slack still runs, and keeps that cell.
"""

from __future__ import annotations

import errno
import os
import tempfile
import weakref
from pathlib import Path
from typing import Any

__all__ = ["DISK_FULL_ERRNOS", "Reserve", "atomic_write_text", "final_bytes", "is_disk_full", "reserve_bytes"]

#: errno values meaning "no room": a full file system or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Room wished for beyond twice the file's size, for the cell being written when the disk fills.
RESERVE_SLACK_BYTES = 1 << 20
#: Room the final write needs beyond the text on disk: the status, its reason and the finish time.
FINAL_MARGIN_BYTES = 4096
#: open(2) flag for an unnamed file in a folder (Linux 3.11+; ``os.O_TMPFILE`` where Python has it).
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


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
    """Room wished for: the file once more, and a cell's worth beyond it."""
    return 2 * text_bytes + RESERVE_SLACK_BYTES


def final_bytes(text_bytes: int) -> int:
    """Room the final write of a file of ``text_bytes`` needs: the file plus its closing status."""
    return text_bytes + FINAL_MARGIN_BYTES


def _unnamed_file(folder: Path) -> tuple[int, bool]:
    """A descriptor of a new file in ``folder`` that no name points at; True if it can be linked
    (``O_TMPFILE``), False for the fallback (created, then unlinked)."""
    if _O_TMPFILE:
        try:
            return os.open(folder, os.O_RDWR | _O_TMPFILE, 0o600), True
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise  # a full or read-only disk says so here, as the fallback would
    fd, name = tempfile.mkstemp(prefix=".siliconbench-reserve-", dir=folder)
    os.unlink(name)
    return fd, False


class Reserve:
    """Disk space set aside beside ``path`` for the last write of that file.

    The space is an unnamed file held open by descriptor: closing it gives the space back, and so
    does the kernel when the process dies, even by SIGKILL, so a killed run leaves no reserve
    behind. ``write_into`` turns it into the file itself.
    """

    def __init__(self, path: Path) -> None:
        self.folder = path.parent
        self.size = 0
        self._fd: int | None = None
        self._linkable = False
        self._closer: weakref.finalize[Any, Any] | None = None

    def ensure(self, size: int, need: int | None = None) -> None:
        """Hold ``size`` bytes, or at least ``need`` where the disk has no room for ``size``;
        raises OSError (see ``is_disk_full``) when not even ``need`` fits, keeping what it held."""
        need = size if need is None else min(need, size)
        if size <= self.size:
            return
        if self._fd is None:
            self._fd, self._linkable = _unnamed_file(self.folder)
            self._closer = weakref.finalize(self, os.close, self._fd)  # a writer dropped unfinished
        try:
            os.posix_fallocate(self._fd, 0, size)
        except OSError as exc:
            if not is_disk_full(exc) or need == size:
                raise
            if need > self.size:
                os.posix_fallocate(self._fd, 0, need)  # raises when not even the need fits
                self.size = need
            return
        self.size = size

    def write_into(self, path: Path, text: str) -> bool:
        """Write ``text`` as ``path`` in the reserved space itself and give the reserve up; False
        (nothing changed) where it is too small or cannot be given a name, so the caller writes
        ``path`` the ordinary way after ``release()``."""
        data = text.encode()
        fd = self._fd
        if fd is None or not self._linkable or len(data) > self.size:
            return False
        tmp = path.parent / f".{path.name}.{os.getpid()}.final.tmp"
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            self.size = len(data)
            os.fsync(fd)
            # linkat(2) with AT_SYMLINK_FOLLOW names an O_TMPFILE file; os.link takes that path only
            # when given a folder descriptor (without one it calls link(2), which links the symlink).
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=folder, follow_symlinks=True)
            finally:
                os.close(folder)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        self.release()
        return True

    def release(self) -> None:
        """Give the space back (or, after ``write_into``, let go of the file it became)."""
        if self._closer is not None:
            self._closer()  # closes the descriptor once
        self._fd, self._closer = None, None
        self.size = 0
