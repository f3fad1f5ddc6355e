"""The library entry point for one image: `imgpipe.optimize(source, options)`.

pyvips is imported lazily (on the first call), so `import imgpipe` stays cheap for planning,
dry runs and tests that never touch pixels.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .engine.types import Limits, Rendition
from .options import Recipe, parse


def optimize(source: Path | bytes | str, options: str | Recipe, *,
             limits: Limits | None = None) -> Rendition:
    """Render one rendition of `source` (a path or the image bytes) as `options` ask.

    Raises OptionError (bad options, exit status 2) or ImageError (bad image, exit status 1).
    The result carries the bytes and what was decided: size, format, quality, warnings.
    """
    recipe = parse(options) if isinstance(options, str) else options
    from .engine import open_source  # the only pyvips importer, loaded on first use

    return open_source(source, limits or Limits()).render(recipe)


def write_atomic(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` so that it is either the old file or all of the new one.

    Temp file in the same directory (same filesystem, so the rename is atomic), fsync, then
    os.replace; on any failure the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
