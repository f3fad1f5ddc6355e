"""The library entry point for one image: `imgpipe.optimize(source, options)`.

pyvips is imported lazily (on the first call), so `import imgpipe` stays cheap for planning,
dry runs and tests that never touch pixels.
"""

from __future__ import annotations

from pathlib import Path

from .errors import OptionError, describe
from .formats import AUTO, EXTENSIONS, by_extension, by_name
from .model import Limits, Rendition, SvgMode
from .options import Recipe, parse


def optimize(
    source: Path | bytes | str,
    options: str | Recipe,
    *,
    limits: Limits | None = None,
    svg: SvgMode | None = None,
) -> Rendition:
    """Render one rendition of `source` (a path or the image bytes) as `options` ask.

    Raises OptionError (bad options, exit status 2) or ImageError (bad image, exit status 1).
    The result carries the bytes and what was decided: size, format, quality, warnings. The
    bytes are those a build writes for the same options (and no placeholder is made); with a
    fixed quality and a named format the image streams from decode to encoder. An SVG is
    refused unless `svg="rasterize"` (drawn at the size asked, after `engine.svg.prescan`).
    """
    recipe = parse(options) if isinstance(options, str) else options
    from .engine import open_source  # the only pyvips importer, loaded on first use

    return open_source(source, limits or Limits(), svg_mode=svg).render(recipe)


def for_output(recipe: Recipe, output: str) -> Recipe:
    """`recipe` for writing to the file `output`: with no format= the name's extension chooses
    it (`-o out.webp` writes WebP); a name that contradicts format= is an OptionError, as is
    an SVG name (imgpipe writes raster images only). `-` (standard output) changes nothing."""
    if output == "-":
        return recipe
    wanted = by_extension(output)
    stem, dot, ext = output.rpartition(".")
    if wanted is None:
        if dot and ext.lower() == "svg":
            raise OptionError(
                describe(
                    "svg-output",
                    output,
                    "a raster image name: " + " ".join(f".{e}" for e in EXTENSIONS),
                    advice="imgpipe does not write SVG; a build publishes an SVG source as it is",
                )
            )
        return recipe
    if recipe.format == AUTO:
        return recipe.with_(format=wanted)
    if recipe.format != wanted:
        ext = by_name(recipe.format).extension
        raise OptionError(
            describe(
                "extension-mismatch",
                output,
                f"a name ending in .{ext} for format={recipe.format}",
                "-o",
                suggestion=f"{stem}.{ext}",
                advice=f"or leave format= out to write {wanted} as the name says",
            )
        )
    return recipe


def output_name(output: str, fmt: str) -> str:
    """`output`, or the name it should have had when its extension names no format (for a
    warning: `out.tif` holding PNG -> `out.png`); `-` and names without a dot are left."""
    stem, dot, ext = output.rpartition(".")
    if output == "-" or not dot or "/" in ext or by_extension(output) is not None:
        return output
    return f"{stem}.{by_name(fmt).extension}"
