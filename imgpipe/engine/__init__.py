"""The image engine: the only package that imports pyvips.

This module is the `imgpipe.model.Engine` the rest of imgpipe uses (build, watch, server,
plugins):

    source = open_source(path_or_bytes, limits)   # validates: allow-listed loader, limits
    source.info                                   # SourceInfo (size after autorotate, format...)
    source.render(recipe) -> Rendition            # raises ImageError
    source.render_all(recipes)                    # renditions loading alike share a decode
    source.info.placeholder                       # set by render_all (colour + tiny preview)
    open_source(..., svg_mode="copy"|"rasterize") # SVGs: refused unless a mode is given

`render` never writes files; callers write `Rendition.data` atomically. A rendition's bytes
depend on the source and its own recipe only: `render(r)` and `render_all([..., r, ...])` give
the same bytes for `r` (its output name hashes just those).

Importing this package is cheap: libvips (and numpy, which the metric uses) load on the first
`open_source` or `versions()`, so a no-op build, which needs only `identity()`, never loads
them (loading them costs ~0.3 s of every process).
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from ..model import Limits, Rendition, SourceHandle, SourceInfo, SvgMode

__all__ = [
    "ENGINE_VERSION",
    "Limits",
    "Rendition",
    "SourceInfo",
    "identity",
    "open_source",
    "versions",
]

# Bump when the bytes produced for the same input and options change (settings, presets,
# pipeline order): it is part of every cache key.
# 2: animated GIF/WebP sources stay animated in GIF and WebP. 3: perceptual quality presets,
# oxipng for PNG, kept JPEG sources. 5: each rendition from its own shrink-on-load and its own
# quality search, whatever else is built with it (deterministic outputs). 6: WebP searches
# start lower for renditions bigger than the probe (optimise.PROBE_DRIFT). 7: wide-gamut
# sources keep their gamut (Display P3, with its profile); animated WebP searches its quality;
# per-format/width target corrections; JPEGs 2x smaller than a JPEG source are not capped.
# 8: animated GIF and video (WebM, MP4) search their presets' perceptual targets (clip.py);
# the metric scores with a per-photo bias from the original's texture (metric.py).
# 9: libvips runs one thread per render everywhere (load.py): AVIF's bytes depended on it.
# 10: a searched JPEG keeps one chroma mode (4:2:0, or full chroma tried apart: optimise.search).
# 11: a search's answer is checked by butteraugli on a window and the target moved (judge.py).
# 12: AVIF tuned for SSIM, WebP without sharp YUV (unless the target needs it); the searches'
# start moves from the probe's answer by refitted drifts (about a third less CPU).
# 13: the 320 px probe's search is not checked by butteraugli (it only seeds the start); the
# check judges a big rendition in two windows, the metric's worst and the centred one.
ENGINE_VERSION = "13"

_LIBS = re.compile(
    r"/lib(vips|jpeg|png16|spng|webp|heif|aom|dav1d|imagequant|cgif|tiff)"
    r"\.so\.([\d.]+)"
)
_DEFAULT_LIMITS = Limits()


def open_source(
    source: bytes | str | Path,
    limits: Limits = _DEFAULT_LIMITS,
    *,
    svg_mode: SvgMode | None = None,
    name: str | None = None,
) -> SourceHandle:
    """Read and validate a source (see `engine.source.open_source`); raises ImageError."""
    from .source import open_source as open_  # loads libvips: the first pixel is needed

    return open_(source, limits, name=name, svg_mode=svg_mode)


def versions() -> dict[str, str]:
    """libvips and encoder versions, for cache keys: an encoder upgrade rebuilds everything."""
    import pyvips

    # The whole engine, as a render would load it: the shared libraries listed below must not
    # depend on whether this process has rendered yet, or cache keys would.
    from . import source  # noqa: F401

    found = {
        "engine": ENGINE_VERSION,
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
    }
    found.update(_packages())
    try:  # a system libvips: its codecs are separate shared libraries with their own versions
        for match in _LIBS.finditer(Path("/proc/self/maps").read_text()):
            found.setdefault(f"lib{match.group(1)}", match.group(2))
    except OSError:
        pass
    return found


def identity() -> dict[str, str] | None:
    """What determines `versions()`, read from package metadata without loading libvips.

    pyvips-binary bundles libvips with fixed versions of every codec, so its version (with
    pyvips' and ours) pins everything `versions()` reports. With a system libvips only loading
    it tells its version: None, and the build asks `versions()`."""
    found = {"engine": ENGINE_VERSION, **_packages()}
    return found if "pyvips-binary" in found else None


def _packages() -> dict[str, str]:
    found = {}
    for package in ("pyvips", "pyvips-binary"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found
