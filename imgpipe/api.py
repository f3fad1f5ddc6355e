"""The library entry point for one image: `imgpipe.optimize(source, options)`.

pyvips is imported lazily (on the first call), so `import imgpipe` stays cheap for planning,
dry runs and tests that never touch pixels.
"""

from __future__ import annotations

from pathlib import Path

from .model import Limits, Rendition
from .options import Recipe, parse


def optimize(
    source: Path | bytes | str, options: str | Recipe, *, limits: Limits | None = None
) -> Rendition:
    """Render one rendition of `source` (a path or the image bytes) as `options` ask.

    Raises OptionError (bad options, exit status 2) or ImageError (bad image, exit status 1).
    The result carries the bytes and what was decided: size, format, quality, warnings. The
    bytes are those a build writes for the same options (and no placeholder is made); with a
    fixed quality and a named format the image streams from decode to encoder.
    """
    recipe = parse(options) if isinstance(options, str) else options
    from .engine import open_source  # the only pyvips importer, loaded on first use

    return open_source(source, limits or Limits()).render(recipe)
