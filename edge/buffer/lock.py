"""BufferLock: one daemon per buffer file, for the daemon's whole lifetime.

Two writers on one SQLite buffer would each believe they own the sync cursors and the
retention; the second daemon must stop before it touches the file. An advisory `flock` on
`<buffer>.lock` (held until the process ends, released by the kernel even on kill -9)
says who owns it; the file holds the owner's pid for the message. The lock is named from
the resolved path, so a second daemon that reaches the same file through a symlink (or a
symlinked folder) meets the same lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from edge.errors import BufferInUseError


class BufferLock:
    def __init__(self, buffer_path: Path) -> None:
        resolved = buffer_path.resolve()
        self.path = resolved.with_name(resolved.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise BufferInUseError naming the pid that holds it."""
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BufferInUseError(
                f"{self.path.with_suffix('')} is in use by another edge-gateway (pid {holder}); "
                "two daemons must never share a buffer: give each its own buffer.path") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def held_by_someone(self) -> bool:
        """True while another process holds the lock (a daemon runs on this buffer)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
