"""A validated source and its renditions: one decode feeds every rendition of it.

Order per rendition (each step has a test): decode -> autorotate -> sRGB -> trim -> resize
-> crop/pad -> choose format -> flatten alpha -> encode.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyvips

from ..errors import ImageError
from ..formats import FORMATS
from ..geometry import compute
from ..options import Recipe
from .encode import choose_format, encode, keeps_alpha, plan
from .failure import because, fail
from .load import check_size, decode, identify, jpeg_shrink, read_header
from .quality import estimate_jpeg_quality
from .sniff import Kind
from .transform import alpha_in_use, few_colours, settle_alpha, shape, to_srgb, trim
from .types import Limits, Rendition, SourceInfo


class Source:
    """An allow-listed image whose header passed the limits. Pixels are decoded per render call."""

    def __init__(self, data: bytes, kind: Kind, info: SourceInfo, name: str):
        self.data = data
        self.kind = kind
        self.info = info
        self.name = name
        self._jpeg_quality = estimate_jpeg_quality(data) if kind.family == "jpeg" else None

    def render(self, recipe: Recipe) -> Rendition:
        """One rendition; raises ImageError."""
        result = self.render_all([recipe])[0]
        if isinstance(result, ImageError):
            raise result
        return result

    def render_all(self, recipes: list[Recipe]) -> list[Rendition | ImageError]:
        """Every rendition from one decode; a failing recipe does not stop the others."""
        results: list[Rendition | ImageError | None] = [None] * len(recipes)
        todo = []
        for index, recipe in enumerate(recipes):
            if recipe.format in FORMATS and FORMATS[recipe.format].video:
                results[index] = self._video_refused(recipe)
            else:
                todo.append(index)
        if todo:
            try:
                base, shrunk = self._decode([recipes[i] for i in todo])
            except ImageError as error:
                for index in todo:
                    results[index] = error
                return results  # type: ignore[return-value]
            colours = _Lazy(lambda: few_colours(base))
            for index in todo:
                results[index] = self._render_one(base, shrunk, recipes[index], colours)
        return results  # type: ignore[return-value]

    def _decode(self, recipes: list[Recipe]) -> tuple[pyvips.Image, bool]:
        """The prepared (autorotated, sRGB) pixels, and whether they were shrunk on load."""
        shrink = 1
        if self.kind.family == "jpeg" and not any(r.trim for r in recipes):
            # Shrink-on-load for the largest rendition asked for; trim needs every pixel.
            shrink = jpeg_shrink(min(self._reduction(r) for r in recipes))
        image = decode(self.kind, self.data, self.name, shrink)
        try:
            prepared = to_srgb(image)
            if len(recipes) > 1 and prepared is not image:
                # Rotation and colour conversion once, not once per rendition.
                prepared = prepared.copy_memory()
            return prepared, shrink > 1
        except pyvips.Error as error:
            raise fail("decode-failed", self.name, f"cannot convert it to sRGB{because(error)}",
                       f"a valid {self.kind.label} file", "re-export it in RGB", "decode") from None

    def _reduction(self, recipe: Recipe) -> float:
        g = compute(recipe, self.info.width, self.info.height)
        return min(self.info.width / g.scaled_width, self.info.height / g.scaled_height)

    def _render_one(self, base: pyvips.Image, shrunk: bool, recipe: Recipe,
                    colours: _Lazy) -> Rendition | ImageError:
        deadline = time.monotonic() + recipe.timeout
        stage = "transform"
        try:
            warnings = list(recipe.warnings)
            # Geometry works on full-size dimensions: the header's when the JPEG was shrunk
            # on load, else the decoded image's own (what gets resized, so no aspect drifts).
            image = base
            width, height = (self.info.width, self.info.height) if shrunk else (
                base.width, base.height)
            if recipe.trim:  # before anything else, on every pixel (base is full size)
                image, trimmed = trim(image)
                warnings.extend(trimmed)
                width, height = image.width, image.height
            geometry = compute(recipe, width, height)
            shaped = shape(image, geometry, recipe)
            if shaped is not base:  # a fresh pipeline of this rendition's own: watch the clock
                shaped = _within(shaped, deadline)
            shaped = shaped.copy_memory()  # evaluated once, read by the checks and the encoder

            alpha_used = alpha_in_use(shaped)
            few = recipe.format == "auto" or (recipe.format == "gif"
                                              and recipe.quality == "lossless")
            lossless = recipe.quality == "lossless" and not geometry.resizes
            fmt = choose_format(recipe.format, alpha_used, few and colours(), lossless)
            encoding, planned = plan(fmt, recipe.quality, geometry.resizes,
                                     few and colours(), self._jpeg_quality)
            warnings.extend(planned)
            final = settle_alpha(shaped, keeps_alpha(fmt) and alpha_used, recipe.bgcolor)
            stage = "encode"
            data = encode(final, encoding)
            if time.monotonic() > deadline:
                raise TimeoutError
        except TimeoutError:
            return self._timed_out(recipe, stage)
        except ImageError as error:
            return error
        except pyvips.Error as error:
            if time.monotonic() > deadline:
                return self._timed_out(recipe, stage)
            verb = "encode" if stage == "encode" else "process"
            return fail(f"{stage}-failed", self.name,
                        f"cannot {verb} it as {recipe}{because(error)}",
                        "an image libvips can work on", "report this file to imgpipe", stage)
        return Rendition(data=data, format=fmt, width=geometry.width, height=geometry.height,
                         quality=encoding.quality, encoder_quality=encoding.encoder_quality,
                         warnings=tuple(warnings))

    def _timed_out(self, recipe: Recipe, stage: str) -> ImageError:
        return fail("timeout", self.name, f"{recipe} took longer than timeout={recipe.timeout:g}s",
                    "a rendition within its time budget",
                    "raise timeout=, or ask for a smaller size or a faster format", stage)

    def _video_refused(self, recipe: Recipe) -> ImageError:
        frames = f"an animation of {self.info.frames} frames" if self.info.frames > 1 else \
            "a still image"
        return fail("video-needs-animation", self.name,
                    f"format={recipe.format} (video from animated GIFs) is not supported yet, "
                    f"and this source is {frames}",
                    "format=auto|jpeg|png|webp|avif|gif", "use format=webp or format=gif for now",
                    "encode")


def _within(image: pyvips.Image, deadline: float) -> pyvips.Image:
    """Make libvips abandon evaluating `image` once the deadline has passed."""
    image.set_progress(True)

    def on_eval(evaluated: pyvips.Image, _progress) -> None:
        if time.monotonic() > deadline:
            evaluated.set_kill(True)

    image.signal_connect("eval", on_eval)
    return image


class _Lazy:
    """A value computed on first use (colour counting costs a pass over the pixels)."""

    def __init__(self, compute_value):
        self._compute = compute_value
        self._value = None

    def __call__(self) -> bool:
        if self._value is None:
            self._value = self._compute()
        return self._value


DEFAULT_LIMITS = Limits()


def open_source(src: Path | bytes | str, limits: Limits = DEFAULT_LIMITS, *,
                name: str | None = None) -> Source:
    """Read and validate a source: size limit, allow-listed type, header and pixel limit.

    Files are read as bytes here, never opened by libvips by name: libvips caches by file
    name, so a file replaced in place could otherwise come back stale.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        name = name or "<bytes>"
    else:
        path = Path(os.fspath(src))
        name = name or str(path)
        try:
            check_size(path.stat().st_size, name, limits)  # before reading a byte of it
            data = path.read_bytes()
        except OSError as error:
            raise fail("unreadable", name, f"cannot read the file ({error.strerror or error})",
                       "a readable image file", "check the path and its permissions") from None
    kind = identify(data, name, limits)
    info = read_header(kind, data, name, limits)
    return Source(data, kind, info, name)
