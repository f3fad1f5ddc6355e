"""The test engine: stands in for imgpipe.engine where pixels do not matter (fast).

Kept out of conftest so mypy checks it against `imgpipe.model.Engine` (tests/test_engine_contract.py
runs the same cases against it, the real engine and every wrapper)."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

from imgpipe.errors import ImageError, image_error
from imgpipe.geometry import compute
from imgpipe.model import Limits, Rendition, SourceInfo, SvgMode
from imgpipe.options import Recipe


class FakeEngine:
    """Stands in for imgpipe.engine in planning/build tests: a "source" is a text file whose
    first line is `WxH`; anything else fails to load. Output bytes depend on source and options,
    so caching is observable, and `renders` counts encodes. An SVG (`<svg width="W"
    height="H"...`) follows `svg_mode` as the real engine does: refused without one, its own
    bytes with "copy", drawn like any source with "rasterize"."""

    ENGINE_VERSION = "fake-1"

    def __init__(self, versions: dict[str, str] | None = None):
        self._versions = versions or {"libvips": "0.0.0"}
        self.renders = 0
        self.opens = 0
        self._lock = threading.Lock()

    def versions(self) -> dict[str, str]:
        return dict(self._versions)

    def identity(self) -> dict[str, str] | None:
        return None  # like a system libvips: every build asks versions()

    def open_source(
        self, source: bytes | str | Path, limits: Limits, *, svg_mode: SvgMode | None = None
    ) -> _FakeSource:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with self._lock:
            self.opens += 1
        if data.lstrip().startswith(b"<svg"):
            if svg_mode is None:
                raise image_error("svg-refused", "an SVG, and no svg mode was given", "load")
            size = re.search(rb'width="(\d+)"\s+height="(\d+)"', data)
            w, h = (int(size.group(1)), int(size.group(2))) if size else (300, 150)
            return _FakeSource(
                self, data, SourceInfo(w, h, "svg", len(data)), copy=svg_mode == "copy"
            )
        try:
            w, h = (int(x) for x in data.split(b"\n", 1)[0].decode().split("x"))
        except ValueError:
            raise image_error("unreadable", "not an image (fake engine)", "load") from None
        return _FakeSource(self, data, SourceInfo(w, h, "jpeg", len(data)))


class _FakeSource:
    def __init__(self, engine: FakeEngine, data: bytes, info: SourceInfo, copy: bool = False):
        self.engine, self.data, self.info, self.copy = engine, data, info, copy

    def render(self, recipe: Recipe) -> Rendition:
        result = self.render_all([recipe])[0]
        if isinstance(result, ImageError):
            raise result
        return result

    def transparent(self) -> bool:
        return self.info.has_alpha  # a fake source has no pixels: its header is all it has

    def render_all(self, recipes: list[Recipe]) -> list[Rendition | ImageError]:
        out: list[Rendition | ImageError] = []
        for recipe in recipes:
            with self.engine._lock:
                self.engine.renders += 1
            if self.copy:
                out.append(
                    Rendition(self.data, "svg", self.info.width, self.info.height, "lossless", None)
                )
                continue
            g = compute(recipe, self.info.width, self.info.height)
            fmt = "jpeg" if recipe.format == "auto" else recipe.format
            # Modern formats come out smaller, as real ones do (the manifest drops those that
            # do not: manifest._not_smaller).
            repeat = {"avif": 2, "webp": 3}.get(fmt, 4)
            blob = hashlib.sha256(self.data + recipe.byte_form().encode()).digest() * repeat
            out.append(Rendition(blob, fmt, g.width, g.height, recipe.quality, 80))
        return out
