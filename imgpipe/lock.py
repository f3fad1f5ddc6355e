"""One build at a time per cache dir (DESIGN §4)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from .errors import ConfigError, describe
from .outputs import storage_error


class BuildLocked(Exception):
    """Another build holds the cache dir lock and we were told not to wait."""


class Lock:
    """One build per cache dir: an flock on `cache_dir/lock`, released by the kernel when the
    process dies, so a killed build never leaves a stale lock behind."""

    def __init__(self, cache_dir: Path):
        self.path = Path(cache_dir) / "lock"
        self.fd: int | None = None

    def acquire(self, wait: bool = True, on_wait=None) -> None:
        _make_cache_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if not wait:
                os.close(fd)
                raise BuildLocked(
                    f"another imgpipe build (pid {holder}) is using "
                    f"{self.path.parent}; wait for it, or run without --no-wait "
                    "to queue behind it"
                ) from None
            if on_wait:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _make_cache_dir(cache_dir: Path) -> None:
    """Create cache_dir, or raise ConfigError saying what is in its way (a disk-wide
    trouble, such as a read-only disk, is left for storage_error)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        return
    except OSError as exc:
        if storage_error(exc):
            raise
        reason = exc.strerror or str(exc)
    blocker = next((p for p in (cache_dir, *cache_dir.parents) if p.is_file()), None)
    if blocker is not None:
        reason = ("it" if blocker == cache_dir else str(blocker)) + " is a file, not a directory"
    raise ConfigError(
        describe(
            "bad-cache-dir",
            str(cache_dir),
            "a directory imgpipe can create for its cache",
            "cache_dir",
            problem=f"cannot create cache_dir ({reason})",
            advice="set cache_dir to another path, or move the file out of the way",
        )
    )
