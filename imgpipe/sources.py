"""Finding the sources on disk and hashing them, one file's trouble never stopping the rest.

A source that cannot be listed or read (a symlink loop, a file deleted or replaced while the
build hashes it, one the build may not read) becomes a `Skipped` entry naming the path, the
stage and the reason; the others are planned and built as usual.

Symbolic links: a link to a file inside the source tree is a source like any other; one that
leads out of it is not followed unless the config says `follow_symlinks = true` (a tree of
originals must not publish `/etc/passwd` because someone linked it in), and is reported as an
`outside-source` note. Links to directories are never followed: a link loop would never end.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import ConfigError, Problem, size_text
from .model import Issue
from .state import State

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """A discovered source and the stat fields that tell whether its bytes may have changed."""

    relpath: str  # relative to the source dir, '/'-separated
    path: str  # absolute
    size: int
    mtime_ns: int
    ctime_ns: int  # changes on any write, even when size and mtime are put back
    inode: int


@dataclass(frozen=True)
class Skipped:
    """A source left out of the build, and why. `failed` is False for a deliberate skip (a
    link out of the source tree): a note, not a failure."""

    relpath: str
    stage: str  # discover, read
    code: str
    message: str
    failed: bool = True

    def issue(self) -> Issue:
        return Issue(self.stage, self.code, self.message, source=self.relpath)


# errno -> (code, what it means here, what to do). Anything else is "unreadable" with the
# system's own words.
_OS_ERRORS = {
    errno.ELOOP: (
        "symlink-loop",
        "a symbolic link loop, or a chain of over 40 links",
        "point the link at a real file, or remove it",
    ),
    errno.ENOENT: (
        "source-vanished",
        "the file was deleted or renamed during the build",
        "run the build again",
    ),
    errno.EACCES: ("unreadable", "permission denied", "make the file readable by the build"),
    errno.EPERM: ("unreadable", "operation not permitted", "make the file readable by the build"),
    errno.EISDIR: (
        "source-vanished",
        "the file was replaced by a directory during the build",
        "run the build again",
    ),
}


def os_skip(relpath: str, stage: str, exc: OSError) -> Skipped:
    """The clean report of an OSError met while listing or reading one source."""
    code, reason, advice = _OS_ERRORS.get(
        exc.errno, ("unreadable", exc.strerror or str(exc), "check the file and the disk")
    )
    return Skipped(relpath, stage, code, f"cannot read it ({reason}); {advice}")


def scan(config: Config) -> tuple[list[SourceFile], list[Skipped]]:
    """Every file under `source` that some rule matches, sorted by path, and the matched ones
    that were left out. Hidden entries (dot files, dot dirs) are skipped: editors and VCS keep
    their droppings there."""
    root = str(config.source)
    if not os.path.isdir(root):
        raise ConfigError(
            Problem("missing-source", f"source directory {root} does not exist", "source")
        )
    real_root = os.path.realpath(root) + os.sep
    found: list[SourceFile] = []
    skipped: list[Skipped] = []
    stack = [(root, "")]
    rules = config.rules
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            skipped.append(os_skip(prefix.rstrip("/") or ".", "discover", exc))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel + "/"))
                continue
            if not any(r.matches(rel) for r in rules):
                continue
            try:
                rel.encode()
            except UnicodeEncodeError:  # manifest keys and URLs are text: the name must be
                shown = rel.encode(errors="surrogateescape").decode(errors="backslashreplace")
                skipped.append(
                    Skipped(
                        shown,
                        "discover",
                        "bad-file-name",
                        "the file name is not valid UTF-8; rename the file",
                    )
                )
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:  # a dangling link, or gone since the listing
                continue
            except OSError as exc:
                skipped.append(os_skip(rel, "discover", exc))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if (
                entry.is_symlink()
                and not config.follow_symlinks
                and not os.path.realpath(entry.path).startswith(real_root)
            ):
                skipped.append(
                    Skipped(
                        rel,
                        "discover",
                        "outside-source",
                        "a symbolic link to a file outside the source directory; not "
                        "followed (set follow_symlinks = true to publish such files)",
                        failed=False,
                    )
                )
                continue
            found.append(
                SourceFile(rel, entry.path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            )
    found.sort(key=lambda f: f.relpath)
    skipped.sort(key=lambda s: s.relpath)
    return found, skipped


def discover(config: Config) -> list[SourceFile]:
    """The sources `scan` finds (what was skipped is the build's to report)."""
    return scan(config)[0]


def hash_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hasher(state: State, max_bytes: int) -> Callable[[SourceFile], str | Skipped]:
    """sha256 of a source through the stat cache, or why it has none: over the byte limit
    (said without reading a byte of it: a 20 GB file would take minutes to hash only to be
    refused), or unreadable."""

    def sha256_of(f: SourceFile) -> str | Skipped:
        if f.size > max_bytes:
            return Skipped(
                f.relpath,
                "read",
                "file-too-large",
                f"{size_text(f.size)} is over the {size_text(max_bytes)} input "
                "limit; shrink the original, or raise the max_bytes limit",
            )
        known = state.known_sha256(f.relpath, f.size, f.mtime_ns, f.ctime_ns, f.inode)
        if known:
            return known
        try:
            sha = hash_file(f.path)
            st = os.stat(f.path)
        except OSError as exc:
            return os_skip(f.relpath, "read", exc)
        # Remembered only if the file did not change while it was read.
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
            f.size,
            f.mtime_ns,
            f.ctime_ns,
            f.inode,
        ):
            state.remember_sha256(f.relpath, f.size, f.mtime_ns, f.ctime_ns, f.inode, sha)
        return sha

    return sha256_of
