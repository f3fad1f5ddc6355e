"""The files a build writes: where they go, whether they are intact, and writing them only
when their bytes differ. Stale ones (written before, not wanted now) can be removed: only files
this tool wrote are ever deleted.

Paths are plain strings here: a no-op build of 10,000 sources handles some 40,000 of them,
and pathlib would cost more than all the rest of that build.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .state import State, atomic_write


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
        return bool(st and known and known.fingerprint == fingerprint
                    and st.st_size == known.size and st.st_mtime_ns == known.mtime_ns)

    def sync(self, path: str, rel: str, fingerprint: str, data: bytes | None,
             load: Callable[[], bytes] | None = None) -> None:
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
        self.state.put_written(rel, fingerprint, st.st_size, st.st_mtime_ns)

    def remove_stale(self) -> None:
        """Delete what earlier builds wrote and this one does not stand by."""
        for rel in self.state.written_paths():
            if rel not in self.keep:
                try:
                    os.unlink(os.path.join(self.root, rel))
                    self.removed += 1
                except FileNotFoundError:
                    pass
                self.state.forget_written(rel)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
