"""Writing files so that a reader, a crash or a Ctrl-C never sees half of one.

Every file the build publishes (outputs, manifest, snippets, blobs, reports, rewritten pages)
goes through `atomic_write`: a temp file next to the target, then a rename. Temp files carry
`TEMP_PREFIX`, so the next build can sweep what a killed one left (`remove_temp_files`)
without touching anything else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TEMP_PREFIX = ".imgpipe-tmp-"


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Temp file in the same directory, fsync, rename: readers see the old file or the new one.
    The fsync makes that hold across a power cut too (not only a killed process)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are published
        os.replace(tmp, path)
    except BaseException:
        unlink(Path(tmp))
        raise


def atomic_copy(source: Path, dest: Path) -> None:
    """Copy `source` to `dest` with its mtime (copy2: a plugin compares mtimes to skip
    unchanged files), the same way: a temp file next to `dest`, then a rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        unlink(Path(tmp))
        raise


def remove_temp_files(directory: Path) -> int:
    """Temp files a killed build left behind (only ours, by their prefix)."""
    count = 0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                unlink(Path(dirpath) / name)
                count += 1
    return count


def unlink(path: Path) -> None:
    """Remove `path` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
