"""The image engine: the only package that imports pyvips.

Contract used by the rest of imgpipe (build, server, plugins):

    source = open_source(path_or_bytes, limits)   # validates: allow-listed loader, limits
    source.info                                   # SourceInfo (size after autorotate, format...)
    source.render(recipe) -> Rendition            # raises ImageError
    source.render_all(recipes)                    # renditions loading alike share a decode
    source.info.placeholder                       # set by render_all (colour + tiny preview)

A rendition's bytes depend on the source and its own recipe only: `render(r)` and
`render_all([..., r, ...])` give the same bytes for `r` (its output name hashes just those).
    open_source(..., svg_mode="copy"|"rasterize") # SVGs: refused unless a mode is given

`render` never writes files; callers write `Rendition.data` atomically.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pyvips

from .source import Source, open_source
from .types import Limits, Rendition, SourceInfo

__all__ = ["ENGINE_VERSION", "Limits", "Rendition", "Source", "SourceInfo", "open_source",
           "versions"]

# Bump when the bytes produced for the same input and options change (settings, presets,
# pipeline order): it is part of every cache key.
# 2: animated GIF/WebP sources stay animated in GIF and WebP. 3: perceptual quality presets,
# oxipng for PNG, kept JPEG sources. 5: each rendition from its own shrink-on-load and its own
# quality search, whatever else is built with it (deterministic outputs).
ENGINE_VERSION = "5"

_LIBS = re.compile(r"/lib(vips|jpeg|png16|spng|webp|heif|aom|dav1d|imagequant|cgif|tiff)"
                   r"\.so\.([\d.]+)")


def versions() -> dict[str, str]:
    """libvips and encoder versions, for cache keys: an encoder upgrade rebuilds everything."""
    found = {"engine": ENGINE_VERSION,
             "libvips": ".".join(str(pyvips.version(i)) for i in range(3))}
    for package in ("pyvips", "pyvips-binary"):
        try:
            # pyvips-binary bundles libvips with fixed versions of every codec.
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:  # a system libvips: its codecs are separate shared libraries with their own versions
        for match in _LIBS.finditer(Path("/proc/self/maps").read_text()):
            found.setdefault(f"lib{match.group(1)}", match.group(2))
    except OSError:
        pass
    return found
