"""The files a build writes: where they go, whether they are intact, and writing them only
when their bytes differ. Stale ones (written before, not wanted now) can be removed: only files
this tool wrote, and only while they are still exactly what it wrote (size, mtime and bytes):
a file the user put back at such a path is theirs.

Paths are plain strings here: a no-op build of 10,000 sources handles some 40,000 of them,
and pathlib would cost more than all the rest of that build.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .errors import Problem, StorageError
from .files import TEMP_PREFIX, atomic_write
from .state import State

# Write failures that are about the disk, not one file: the build cannot go on anywhere.
# errno -> (code, reason, advice)
STORAGE_ERRNOS = {
    errno.ENOSPC: ("disk-full", "no space left on the device", "free some space, then build again"),
    errno.EDQUOT: ("disk-full", "disk quota exceeded", "free some space, then build again"),
    errno.EROFS: (
        "read-only",
        "the file system is read-only",
        "build on a writable disk, or point output/cache_dir at one",
    ),
    errno.EACCES: ("read-only", "permission denied", "make the directory writable by the build"),
    errno.EPERM: (
        "read-only",
        "operation not permitted",
        "make the directory writable by the build",
    ),
}


def _no_space(directory: Path | None) -> bool:
    """SQLite reports a full disk met while growing its WAL index as a "disk I/O error"."""
    try:
        return directory is not None and os.statvfs(directory).f_bavail == 0
    except OSError:
        return False


_SQLITE_STORAGE = (
    "database or disk is full",
    "readonly database",
    "unable to open database",
    "disk I/O error",
)


def storage_error(exc: BaseException, cache_dir: Path | None = None) -> StorageError | None:
    """The one-line error that ends a build for a disk-wide write failure, or None when `exc`
    is not one (it is then one file's problem, or a bug)."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        code, reason, advice = STORAGE_ERRNOS[exc.errno]
        where = str(exc.filename or "the output")
        if os.path.basename(where).startswith(TEMP_PREFIX):  # its temp name tells nothing
            where = os.path.dirname(where)
        return StorageError(Problem(code, f"cannot write {where} ({reason}); {advice}"))
    text = str(exc)
    # SQLite words these itself; any other OperationalError is a bug and stays one.
    if isinstance(exc, sqlite3.OperationalError) and any(w in text for w in _SQLITE_STORAGE):
        code = (
            "disk-full"
            if "full" in text or _no_space(cache_dir)
            else ("disk-error" if "I/O" in text else "read-only")
        )
        where = cache_dir or "cache_dir"
        return StorageError(
            Problem(
                code,
                f"cannot write the build state in {where} ({text}); "
                "free some space or make cache_dir writable, then "
                "build again",
            )
        )
    return None


class Outputs:
    def __init__(self, root: Path, state: State):
        self.root = root
        self.state = state
        self.written = 0  # files actually (re)written
        self.removed = 0
        self.keep: set[str] = set()  # root-relative paths this build stands by
        self.verified: set[str] = set()  # found intact while planning
        self._stats: dict[str, os.stat_result | None] = {}
        self._prefixes: dict[Path, tuple[str, str]] = {}

    def where(self, directory: Path, name: str) -> tuple[str, str]:
        """(absolute path, path relative to the project root) of `name` inside `directory`."""
        prefix = self._prefixes.get(directory)
        if prefix is None:
            rel = os.path.relpath(directory, self.root)
            prefix = self._prefixes[directory] = (str(directory), "" if rel == "." else rel)
        return f"{prefix[0]}/{name}", f"{prefix[1]}/{name}" if prefix[1] else name

    def stat(self, path: str) -> os.stat_result | None:
        if path not in self._stats:
            try:
                self._stats[path] = os.stat(path)
            except FileNotFoundError:
                self._stats[path] = None
        return self._stats[path]

    def intact(self, path: str, rel: str, fingerprint: str) -> bool:
        """True if `path` is the file this tool last wrote there for `fingerprint`."""
        known = self.state.written(rel)
        st = self.stat(path)
        return bool(
            st
            and known
            and known.fingerprint == fingerprint
            and st.st_size == known.size
            and st.st_mtime_ns == known.mtime_ns
        )

    def sync(
        self,
        path: str,
        rel: str,
        fingerprint: str,
        data: bytes | None,
        load: Callable[[], bytes] | None = None,
    ) -> None:
        """Make `path` hold `data` (or `load()`), writing only if its bytes differ."""
        self.keep.add(rel)
        if rel in self.verified or self.intact(path, rel, fingerprint):
            return
        if data is None:
            data = load()
        st = self.stat(path)
        if st is None or st.st_size != len(data) or _read(path) != data:
            atomic_write(Path(path), data)
            self.written += 1
        st = self._stats[path] = os.stat(path)
        self.state.put_written(
            rel, fingerprint, st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest()
        )

    def remove_stale(self) -> None:
        """Delete what earlier builds wrote and this one does not stand by, if it is still
        what was written; either way the path is no longer the build's."""
        for rel in self.state.written_paths():
            if rel not in self.keep:
                path = os.path.join(self.root, rel)
                if _still_ours(path, self.state.written(rel), self.state.written_sha256(rel)):
                    os.unlink(path)
                    self.removed += 1
                self.state.forget_written(rel)


def _still_ours(path: str, written, sha256: str) -> bool:
    """Stale files are few, so reading each one to compare its hash costs little."""
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) != (written.size, written.mtime_ns):
            return False
        return not sha256 or hashlib.sha256(_read(path)).hexdigest() == sha256
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
