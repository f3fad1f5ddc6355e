"""A validated source and its renditions: one decode feeds every rendition of it.

Order per rendition (each step has a test): decode -> autorotate -> sRGB -> trim -> resize
-> crop/pad -> choose format -> flatten alpha -> encode.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path

import pyvips

from ..errors import ImageError
from ..formats import FORMATS
from ..geometry import compute
from ..model import Limits, Rendition, SourceInfo
from ..options import DEFAULT_TIMEOUT, Recipe
from . import animate, diagnostics, placeholder, svg
from .failure import because, fail
from .load import (
    check_size,
    decode,
    identify,
    jpeg_shrink,
    out_of_time,
    read_header,
    time_budget,
    watched,
)
from .optimise import Optimiser, Original
from .quality import estimate_jpeg_quality
from .sniff import Kind, is_svg
from .transform import alpha_in_use, few_colours, resize_exact, shape, to_srgb, trim


class Source:
    """An allow-listed image whose header passed the limits. Pixels are decoded per render call."""

    def __init__(self, data: bytes, kind: Kind, info: SourceInfo, name: str):
        self.data = data
        self.kind = kind
        self.info = info
        self.name = name
        self._jpeg_quality = estimate_jpeg_quality(data) if kind.family == "jpeg" else None
        self._pristine = False  # the decoded pixels are the file's own (no rotation, no ICC)
        self._spent = 0.0  # seconds the last decode took, charged to each rendition's timeout=

    def render(self, recipe: Recipe) -> Rendition:
        """One rendition; raises ImageError."""
        result = self.render_all([recipe])[0]
        if isinstance(result, ImageError):
            raise result
        return result

    def render_all(self, recipes: list[Recipe]) -> list[Rendition | ImageError]:
        """Every rendition from one decode; a failing recipe does not stop the others.

        The decode also gives the source its placeholder (`info.placeholder`), even with no
        recipes at all."""
        results: list[Rendition | ImageError | None] = [None] * len(recipes)
        if self.kind.family == "svg":
            # A vector loses nothing when drawn larger: "never enlarge" guards raster sources
            # only, so a 64 px logo still comes out at 128 px for a 2x screen.
            recipes = [replace(r, mode="fit") if r.mode == "scale-down" else r for r in recipes]
        todo, moving = [], []
        animated = self.info.frames > 1
        for index, recipe in enumerate(recipes):
            if animated and animate.keeps_motion(recipe.format):
                moving.append(index)
            elif recipe.format in FORMATS and FORMATS[recipe.format].video:
                results[index] = self._video_refused(recipe)
            else:
                todo.append(index)
        started = time.monotonic()
        try:
            # timeout= covers the decode too: it stops when the most patient rendition's
            # budget is spent, and what it took is taken off each rendition's own budget.
            with (time_budget(max((r.timeout for r in recipes), default=DEFAULT_TIMEOUT)),
                  diagnostics.listening() as heard):
                if moving:  # every frame, once; stills of it take the first frame from there
                    frames = animate.load(self.kind, self.data, self.name)
                    base, shrunk = frames.first, False
                else:
                    base, shrunk = self._decode([recipes[i] for i in todo])
        except (ImageError, pyvips.Error) as error:
            if isinstance(error, pyvips.Error):  # the shared resize was stopped (or failed)
                error = out_of_time(self.name) or fail(
                    "decode-failed", self.name, f"cannot resize it{because(error)}",
                    f"a valid {self.kind.label} file", "re-export it from the original", "decode")
            for index in todo + moving:
                results[index] = error
            return results  # type: ignore[return-value]
        self._spent = time.monotonic() - started
        damage = diagnostics.damage_warning(heard, self.kind.label)
        if self.info.placeholder is None:
            self.info = replace(self.info, placeholder=placeholder.make(base))
        for index in moving:
            results[index] = animate.render(frames, recipes[index], self.name, self._spent)
        colours = _Lazy(lambda: few_colours(base))
        # Smallest first: each size's quality search starts from the last one's result, so
        # the full search runs where encodes are cheapest (see optimise.py).
        todo.sort(key=lambda i: (self._area(recipes[i]), _COST.get(recipes[i].format, 0)))
        optimiser = Optimiser(Original(self.data, self.kind.family, self._jpeg_quality,
                                       self.name))
        for index in todo:
            result = self._render_one(base, shrunk, recipes[index], colours, optimiser)
            if animated and isinstance(result, Rendition):
                dropped = animate.first_frame_warning(result.format, self.info.frames)
                result = replace(result, warnings=(*result.warnings, dropped))
            results[index] = result
        if damage:
            results = [replace(r, warnings=(*r.warnings, damage)) if isinstance(r, Rendition)
                       else r for r in results]
        return results  # type: ignore[return-value]

    def _decode(self, recipes: list[Recipe]) -> tuple[pyvips.Image, bool]:
        """The prepared (autorotated, sRGB) pixels, and whether they were shrunk on load."""
        shrink = 1
        # Shrink-on-load for the largest rendition asked for (with none, only the placeholder
        # needs the pixels: the smallest will do); trim needs every pixel.
        reduction = min((self._reduction(r) for r in recipes), default=math.inf)
        if self.kind.family == "jpeg" and not any(r.trim for r in recipes):
            shrink = jpeg_shrink(reduction)
        if self.kind.family == "svg" and not any(r.trim for r in recipes):
            # A vector is drawn at the size the largest rendition needs, not drawn small and
            # enlarged; geometry then works on the declared size, as for a shrunk JPEG.
            scale = 1 / reduction if math.isfinite(reduction) else 1.0
            image = decode(self.kind, self.data, self.name, scale=scale)
            return self._prepared(image, recipes), scale != 1
        image = self._prepared(decode(self.kind, self.data, self.name, shrink), recipes)
        reduced = self._reduced(image, recipes, reduction)
        return (reduced, True) if reduced is not None else (image, shrink > 1)

    def _reduced(self, image: pyvips.Image, recipes: list[Recipe],
                 reduction: float) -> pyvips.Image | None:
        """The pixels resized once to the largest rendition, when that is well below what was
        decoded: the smaller renditions then resize from it, not each from the full decode
        (shrink-on-load only reaches powers of two). None when it would not pay or would change
        the largest rendition (trim works on every pixel; geometry needs no enlargement)."""
        if len(recipes) < 2 or any(r.trim for r in recipes) or not math.isfinite(reduction):
            return None
        largest = compute(min(recipes, key=self._reduction), self.info.width, self.info.height)
        if largest.scaled_width * 1.25 > image.width or largest.scaled_height * 1.25 > image.height:
            return None
        resized = resize_exact(image, largest.scaled_width, largest.scaled_height)
        return watched(resized).copy_memory()

    def _prepared(self, image: pyvips.Image, recipes: list[Recipe]) -> pyvips.Image:
        try:
            prepared = to_srgb(image)
            self._pristine = prepared is image
            if len(recipes) > 1 and prepared is not image:
                # Rotation and colour conversion once, not once per rendition.
                prepared = watched(prepared).copy_memory()
            return prepared
        except pyvips.Error as error:
            raise out_of_time(self.name) or fail(
                "decode-failed", self.name, f"cannot convert it to sRGB{because(error)}",
                f"a valid {self.kind.label} file", "re-export it in RGB", "decode") from None

    def _area(self, recipe: Recipe) -> int:
        g = compute(recipe, self.info.width, self.info.height)
        return g.width * g.height

    def _reduction(self, recipe: Recipe) -> float:
        g = compute(recipe, self.info.width, self.info.height)
        return min(self.info.width / g.scaled_width, self.info.height / g.scaled_height)

    def _render_one(self, base: pyvips.Image, shrunk: bool, recipe: Recipe,
                    colours: _Lazy, optimiser: Optimiser) -> Rendition | ImageError:
        deadline = time.monotonic() + recipe.timeout - self._spent
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
            # The file's own pixels, so its bytes may stand in for the rendition.
            untouched = (shaped is base and self._pristine and not shrunk
                         and self.info.frames == 1)
            if shaped is not base:  # a fresh pipeline of this rendition's own: watch the clock
                shaped = _within(shaped, deadline)
            shaped = shaped.copy_memory()  # evaluated once, read by the checks and the encoder

            stage = "encode"
            out = optimiser.encode(shaped, recipe, alpha_used=alpha_in_use(shaped),
                                   few_colours=colours, resizes=geometry.resizes,
                                   untouched=untouched, deadline=deadline)
            warnings.extend(out.warnings)
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
        return Rendition(data=out.data, format=out.format, width=geometry.width,
                         height=geometry.height, quality=out.quality,
                         encoder_quality=out.encoder_quality, score=out.score,
                         warnings=tuple(warnings))

    def _timed_out(self, recipe: Recipe, stage: str) -> ImageError:
        return fail("timeout", self.name, f"{recipe} took longer than timeout={recipe.timeout:g}s",
                    "a rendition within its time budget",
                    "raise timeout=, or ask for a smaller size or a faster format", stage)

    def _video_refused(self, recipe: Recipe) -> ImageError:
        return fail("video-needs-animation", self.name,
                    f"format={recipe.format} makes a video of an animation, but this source is a "
                    f"still {self.kind.label} image (1 frame)",
                    "an animated GIF or WebP for format=webm|h264",
                    "use format=webp or format=avif for still images", "encode")


# Encoders by cost per pixel: among renditions of one size, the cheapest search goes first.
_COST = {"jpeg": 0, "webp": 1, "avif": 2}


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
                name: str | None = None, svg_mode: str | None = None) -> Source | svg.SvgCopy:
    """Read and validate a source: size limit, allow-listed type, header and pixel limit.

    Files are read as bytes here, never opened by libvips by name: libvips caches by file
    name, so a file replaced in place could otherwise come back stale.

    SVGs are refused unless `svg_mode` says what to do with them: "copy" publishes the bytes
    as they are (and refuses a file that is not an SVG), "rasterize" draws it like any image,
    once `svg.prescan` has found nothing in it that reaches outside the file.
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
    if svg_mode == "copy" or (svg_mode == "rasterize" and is_svg(data)):
        check_size(len(data), name, limits)
        if svg_mode == "copy":
            if not is_svg(data):
                found = identify(data, name, limits)
                raise fail("not-svg", name, f"named as an SVG, it holds a {found.label} image",
                           "an SVG document", "rename it after what it holds", "load")
            return svg.SvgCopy(data, name)
        svg.prescan(data, name, limits)
        kind = svg.SVG
    else:
        kind = identify(data, name, limits)
    info = read_header(kind, data, name, limits)
    return Source(data, kind, info, name)
