"""A validated source and its renditions: renditions loaded at the same size share a decode.

Order per rendition (each step has a test): decode -> autorotate -> sRGB -> trim -> resize
-> crop/pad -> choose format -> flatten alpha -> encode.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import pyvips

from ..errors import ImageError
from ..formats import AUTO, FORMATS
from ..geometry import compute
from ..model import Limits, Rendition, SourceInfo
from ..options import DEFAULT_TIMEOUT, Recipe
from . import animate, diagnostics, metadata, placeholder, svg
from .failure import because, fail
from .load import (
    check_size,
    decode,
    decode_failure,
    identify,
    jpeg_shrink,
    out_of_time,
    read_header,
    time_budget,
    watched,
)
from .load import stream as stream_pixels
from .lossless import optimise_jpeg
from .optimise import Optimiser, Original, probe_of, probe_recipe
from .quality import estimate_jpeg_quality
from .sniff import Kind, is_svg
from .standin import OwnFile
from .transform import alpha_in_use, few_colours, shape, to_srgb, trim


class Source:
    """An allow-listed image whose header passed the limits. Pixels are decoded per render call."""

    def __init__(self, data: bytes, kind: Kind, info: SourceInfo, name: str):
        self.data = data
        self.kind = kind
        self.info = info
        self.name = name
        self._jpeg_quality = estimate_jpeg_quality(data) if kind.family == "jpeg" else None
        self._interlaced: bool | None = None if kind.family == "jpeg" else False
        self._probes: dict[tuple[str, str], tuple[int, int] | None] = {}
        self._recoded: bytes | None = None  # b"": mozjpeg cannot read it (or not a JPEG)

    def render(self, recipe: Recipe) -> Rendition:
        """One rendition; raises ImageError. Makes no placeholder (nobody asked for one), and
        its bytes are those `render_all` gives the same recipe among any others."""
        result = self._render([recipe], with_placeholder=False)[0]
        if isinstance(result, ImageError):
            raise result
        return result

    def render_all(self, recipes: list[Recipe]) -> list[Rendition | ImageError]:
        """Every rendition; a failing recipe does not stop the others.

        Also gives the source its placeholder (`info.placeholder`), even with no recipes."""
        return self._render(recipes, with_placeholder=True)

    def transparent(self) -> bool:
        """Whether some pixel is not fully opaque: the alpha band's minimum, as a build
        checks before it flattens one (False without an alpha band). Reads the first frame
        once, decoded as a rendition at full size would be; raises ImageError when it does
        not decode."""
        if not self.info.has_alpha:
            return False
        image = self._decoded(1, stream=True, shared=False).image
        try:
            return alpha_in_use(image)
        except pyvips.Error as error:
            raise out_of_time(self.name) or decode_failure(
                self.kind, self.data, self.name, error, "decode"
            ) from None

    def _render(
        self, recipes: list[Recipe], with_placeholder: bool
    ) -> list[Rendition | ImageError]:
        # Each rendition's bytes are a function of the source and its own recipe alone, never
        # of what else is rendered with it (its output name is a hash of just those): each is
        # loaded at its own shrink-on-load (`_load_key`), and renditions share a decode only
        # when their keys are equal, that is when it is the very decode each would make alone.
        results: list[Rendition | ImageError | None] = [None] * len(recipes)
        if self.kind.family == "svg":
            # A vector loses nothing when drawn larger: "never enlarge" guards raster sources
            # only, so a 64 px logo still comes out at 128 px for a 2x screen.
            recipes = [replace(r, mode="fit") if r.mode == "scale-down" else r for r in recipes]
        groups: dict[float, list[int]] = {}
        moving = []
        animated = self.info.frames > 1
        for index, recipe in enumerate(recipes):
            if animated and animate.keeps_motion(recipe.format):
                moving.append(index)
            elif recipe.format in FORMATS and FORMATS[recipe.format].video:
                results[index] = self._video_refused(recipe)
            else:
                groups.setdefault(self._load_key(recipe), []).append(index)
        # timeout= covers the decode too: it stops when the most patient rendition's budget is
        # spent, and what it took is taken off each rendition's own budget.
        with (
            time_budget(max((r.timeout for r in recipes), default=DEFAULT_TIMEOUT)),
            diagnostics.listening() as heard,
        ):
            self._render_groups(recipes, groups, moving, results, with_placeholder)
        # At `full`, the file itself when time ran out or it is smaller (engine/standin.py).
        own = OwnFile(self._original(), self.kind, self.info)
        results = [own.instead_of(r, result) for r, result in zip(recipes, results, strict=True)]
        damage = diagnostics.damage_warning(heard, self.kind.label)
        if damage:
            results = [
                replace(r, warnings=(*r.warnings, damage)) if isinstance(r, Rendition) else r
                for r in results
            ]
        return results  # type: ignore[return-value]

    def _render_groups(
        self,
        recipes: list[Recipe],
        groups: dict[float, list[int]],
        moving: list[int],
        results: list,
        with_placeholder: bool,
    ) -> None:
        animated = self.info.frames > 1
        if moving:  # every frame, once, for all the animated renditions
            started = time.monotonic()
            try:
                frames = animate.load(self.kind, self.data, self.name)
            except ImageError as error:
                frames = error
            spent = time.monotonic() - started
            for index in moving:
                results[index] = (
                    frames
                    if isinstance(frames, ImageError)
                    else animate.render(frames, recipes[index], self.name, spent)
                )
        placeholder_key = None
        if with_placeholder and self.info.placeholder is None:
            placeholder_key = self._placeholder_key()
            groups.setdefault(placeholder_key, [])
        optimiser = Optimiser(self._original())
        optimiser.seed = self._probed
        probes = {probe_of(recipes[i]) for indices in groups.values() for i in indices}
        probes = {p for p in probes if p is not None and p not in self._probes}
        probe_key = self._load_key(probe_recipe("jpeg", "medium")) if probes else None
        if probe_key is not None:
            groups.setdefault(probe_key, [])
        # The probes' group first: every search in the other groups starts from them.
        failed: ImageError | None = None
        for key in sorted(groups, key=lambda k: (k != probe_key, k)):
            group = [recipes[i] for i in groups[key]]
            try:
                if failed:  # the same bytes fail the same way at any size: say it once
                    raise failed
                outcomes = self._render_group(
                    key,
                    group,
                    key == placeholder_key,
                    probes if key == probe_key else set(),
                    optimiser,
                )
            except (ImageError, pyvips.Error) as error:
                if isinstance(error, pyvips.Error):  # the probe's or placeholder's pixels
                    error = out_of_time(self.name) or fail(
                        "decode-failed",
                        self.name,
                        f"cannot resize it{because(error)}",
                        f"a valid {self.kind.label} file",
                        "re-export it from the original",
                        "decode",
                    )
                failed = error
                outcomes = [error] * len(group)
            for index, result in zip(groups[key], outcomes, strict=True):
                if animated and isinstance(result, Rendition):
                    dropped = animate.first_frame_warning(result.format, self.info.frames)
                    result = replace(result, warnings=(*result.warnings, dropped))
                results[index] = result

    def _render_group(
        self,
        key: float,
        recipes: list[Recipe],
        placeholder_too: bool,
        probes: set[tuple[str, str]],
        optimiser: Optimiser,
    ) -> list[Rendition | ImageError]:
        """The renditions loaded at `key`, from one decode (and the placeholder and quality
        probes from it)."""
        # A single rendition that reads its pixels once streams them: decode, resize and
        # encode run as one pipeline, and the full-size decode never sits in memory.
        extra = placeholder_too or bool(probes)
        streams = not extra and len(recipes) == 1 and _reads_source_once(recipes[0])
        decoded = self._decoded(key, stream=streams, shared=len(recipes) + extra > 1)
        if placeholder_too:
            self.info = replace(self.info, placeholder=placeholder.make(decoded.image))
        for fmt, preset in sorted(probes):
            self._probe(decoded, fmt, preset, optimiser)
        colours = _Lazy(lambda: few_colours(decoded.image))
        results = []
        for recipe in recipes:
            try:
                results.append(self._render_one(decoded, recipe, colours, optimiser))
            except _StreamFailed:
                # Decode errors of a stream surface mid-pipeline: the in-memory decode says
                # what was wrong in the words (and with the code) a build uses.
                decoded = self._decoded(key, stream=False, shared=False)
                results.append(self._render_one(decoded, recipe, colours, optimiser))
        return results

    def _original(self) -> Original:
        return Original(
            self.data, self.kind.family, self._jpeg_quality, self.name, self._recoded_jpeg
        )

    def _recoded_jpeg(self) -> bytes | None:
        if self._recoded is None:
            self._recoded = (self.kind.family == "jpeg" and optimise_jpeg(self.data)) or b""
        return self._recoded or None

    def _probed(self, fmt: str, preset: str) -> tuple[int, int] | None:
        """The probe's (width, quality) for the search of `fmt` at `preset` (see optimise)."""
        if (fmt, preset) not in self._probes:  # a search no recipe announced: probe alone
            key = self._load_key(probe_recipe(fmt, preset))
            decoded = self._decoded(key, stream=False, shared=False)
            self._probe(
                decoded,
                fmt,
                preset,
                Optimiser(self._original()),
            )
        return self._probes[(fmt, preset)]

    def _probe(self, decoded: _Decoded, fmt: str, preset: str, optimiser: Optimiser) -> None:
        recipe = probe_recipe(fmt, preset)
        width, height = (
            (self.info.width, self.info.height)
            if decoded.shrunk
            else (decoded.image.width, decoded.image.height)
        )
        try:
            shaped = shape(decoded.image, compute(recipe, width, height), recipe).copy_memory()
            self._probes[(fmt, preset)] = optimiser.probe(shaped, recipe)
        except pyvips.Error:
            self._probes[(fmt, preset)] = None  # the renditions will say what is wrong

    def _load_key(self, recipe: Recipe) -> float:
        """What the pixels of `recipe` are loaded at: a JPEG's shrink-on-load factor (as libvips
        thumbnail chooses it) or an SVG's drawing scale; 1 for everything else."""
        if recipe.trim or self.kind.family not in ("jpeg", "svg") or self._progressive():
            return 1  # trim needs every source pixel
        reduction = self._reduction(recipe)
        if self.kind.family == "jpeg":
            return jpeg_shrink(reduction)
        # A vector is drawn at the size the rendition needs, not drawn small and enlarged;
        # geometry then works on the declared size, as for a shrunk JPEG.
        return 1 / reduction

    def _placeholder_key(self) -> float:
        # Fixed by the source alone, so the manifest does not depend on what else was built.
        side = min(self.info.width, self.info.height)
        if self.kind.family == "jpeg" and not self._progressive():
            return jpeg_shrink(side / placeholder.SAMPLE_SIDE)
        if self.kind.family == "svg":
            return min(1.0, placeholder.SVG_SIDE / max(self.info.width, self.info.height))
        return 1

    def _progressive(self) -> bool:
        """A progressive JPEG: it loads at full size whatever the rendition. Its decode costs
        nearly as much shrunk as not (measured, 18 MP: 970 ms at full size, 860 at 1/4: the
        entropy decoding of every scan dominates), so every rendition of it shares one decode
        instead of paying one per shrink factor."""
        if self._interlaced is None:
            header = pyvips.Image.jpegload_buffer(self.data, access="sequential")
            self._interlaced = bool(header.get_typeof("interlaced") and header.get("interlaced"))
        return self._interlaced

    def _decoded(self, key: float, *, stream: bool, shared: bool) -> _Decoded:
        """The prepared (autorotated; sRGB, or Display P3 for a wide-gamut source) pixels
        loaded at `key`."""
        started = time.monotonic()
        if self.kind.family == "svg":
            image, shrunk, stream = (
                decode(self.kind, self.data, self.name, scale=key),
                key != 1,
                False,
            )
        else:
            shrink, shrunk = int(key), key > 1
            image = stream_pixels(self.kind, self.data, shrink) if stream else None
            if image is None or _turns(image):  # a turn reads rows out of order
                image, stream = decode(self.kind, self.data, self.name, shrink), False
        try:
            prepared = to_srgb(image, wide=True)
            pristine = prepared is image
            if shared and not pristine:
                # Rotation and colour conversion once, not once per rendition.
                prepared = watched(prepared).copy_memory()
            # EXIF, XMP and IPTC go back per rendition, as far as its metadata policy says.
            found = metadata.blobs(prepared)
            prepared = metadata.bare(prepared)
        except pyvips.Error as error:
            raise out_of_time(self.name) or fail(
                "decode-failed",
                self.name,
                f"cannot convert it to sRGB{because(error)}",
                f"a valid {self.kind.label} file",
                "re-export it in RGB",
                "decode",
            ) from None
        # A stream decodes during its rendition's own pipeline, under that one's clock.
        return _Decoded(prepared, shrunk, pristine, stream, time.monotonic() - started, found)

    def _reduction(self, recipe: Recipe) -> float:
        g = compute(recipe, self.info.width, self.info.height)
        cut_width, cut_height = g.cut_size
        return min(cut_width / g.scaled_width, cut_height / g.scaled_height)

    def _render_one(
        self, decoded: _Decoded, recipe: Recipe, colours: _Lazy, optimiser: Optimiser
    ) -> Rendition | ImageError:
        deadline = time.monotonic() + recipe.timeout - decoded.spent
        stage = "transform"
        base = decoded.image
        try:
            warnings = list(recipe.warnings)
            # Geometry works on full-size dimensions: the header's when the JPEG was shrunk
            # on load, else the decoded image's own (what gets resized, so no aspect drifts).
            image = base
            width, height = (
                (self.info.width, self.info.height) if decoded.shrunk else (base.width, base.height)
            )
            if recipe.trim:  # before anything else, on every pixel (base is full size)
                image, trimmed = trim(image)
                warnings.extend(trimmed)
                width, height = image.width, image.height
            geometry = compute(recipe, width, height)
            shaped = shape(image, geometry, recipe)
            # The file's own pixels, so its bytes (metadata stripped) may stand in for it.
            untouched = (
                shaped is base
                and decoded.pristine
                and not decoded.shrunk
                and self.info.frames == 1
                and recipe.metadata == "strip"
            )
            shaped = metadata.attach(shaped, decoded.metadata, recipe.metadata)
            # A pipeline of its own (not the shared decode): watch the clock while it runs.
            watched = shaped is not base or decoded.streamed
            with _within(shaped, deadline) if watched else nullcontext(shaped):
                if not (decoded.streamed and _encodes_once(recipe, shaped)):
                    shaped = shaped.copy_memory()  # evaluated once, read by checks and encoder
                stage = "encode"
                out = optimiser.encode(
                    shaped,
                    recipe,
                    alpha_used=alpha_in_use(shaped),
                    few_colours=colours,
                    resizes=geometry.resizes,
                    untouched=untouched,
                    deadline=deadline,
                    reduction=min(width / geometry.scaled_width, height / geometry.scaled_height),
                )
            warnings.extend(out.warnings)
        except TimeoutError:
            return self._timed_out(recipe, stage)
        except ImageError as error:
            return error
        except pyvips.Error as error:
            if time.monotonic() > deadline:
                return self._timed_out(recipe, stage)
            if decoded.streamed:
                raise _StreamFailed from None
            verb = "encode" if stage == "encode" else "process"
            return fail(
                f"{stage}-failed",
                self.name,
                f"cannot {verb} it as {recipe}{because(error)}",
                "an image libvips can work on",
                "report this file to imgpipe",
                stage,
            )
        return Rendition(
            data=out.data,
            format=out.format,
            width=geometry.width,
            height=geometry.height,
            quality=out.quality,
            encoder_quality=out.encoder_quality,
            score=out.score,
            warnings=tuple(warnings),
        )

    def _timed_out(self, recipe: Recipe, stage: str) -> ImageError:
        return fail(
            "timeout",
            self.name,
            f"{recipe} took longer than timeout={recipe.timeout:g}s",
            "a rendition within its time budget",
            "raise timeout=, or ask for a smaller size or a faster format",
            stage,
        )

    def _video_refused(self, recipe: Recipe) -> ImageError:
        return fail(
            "video-needs-animation",
            self.name,
            f"format={recipe.format} makes a video of an animation, but this source is a "
            f"still {self.kind.label} image (1 frame)",
            "an animated GIF or WebP for format=webm|h264",
            "use format=webp or format=avif for still images",
            "encode",
        )


@dataclass(frozen=True)
class _Decoded:
    image: pyvips.Image  # autorotated sRGB
    shrunk: bool  # loaded below full size: geometry works on the header's dimensions
    pristine: bool  # the file's own pixels (no rotation, no colour conversion)
    streamed: bool  # a read-once pipeline from the file, not pixels in memory
    spent: float  # seconds the decode took, already gone from each rendition's timeout=
    metadata: metadata.Blobs = ()  # the source's EXIF, XMP and IPTC (taken off `image`)


class _StreamFailed(Exception):
    """A streamed rendition failed before its deadline: redo it from an in-memory decode."""


def _reads_source_once(recipe: Recipe) -> bool:
    # trim and attention (crop=auto, an aspect cut without a point) take several passes over
    # the pixels; format=auto (and a lossless GIF) count the decoded colours first.
    return not recipe.trim and not recipe.uses_attention and recipe.format not in (AUTO, "gif")


def _encodes_once(recipe: Recipe, image: pyvips.Image) -> bool:
    """One encode and no check reads `image`: a fixed quality, a named format, no alpha."""
    return isinstance(recipe.quality, int) and recipe.format != AUTO and not image.hasalpha()


def _turns(image: pyvips.Image) -> bool:
    return bool(image.get_typeof("orientation")) and image.get("orientation") != 1


@contextmanager
def _within(image: pyvips.Image, deadline: float) -> Iterator[pyvips.Image]:
    """Make libvips abandon evaluating `image` once the deadline has passed.

    A timer sets the kill flag, which libvips' worker threads check between tiles: a Python
    callback on libvips' progress signal did the same, but runs for every tile under the GIL
    (measured: +20% on a streamed 1600 px WebP)."""
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), image.set_kill, [True])
    timer.daemon = True
    timer.start()
    try:
        yield image
    finally:
        timer.cancel()


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


def open_source(
    src: Path | bytes | str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    name: str | None = None,
    svg_mode: str | None = None,
) -> Source | svg.SvgCopy:
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
            raise fail(
                "unreadable",
                name,
                f"cannot read the file ({error.strerror or error})",
                "a readable image file",
                "check the path and its permissions",
            ) from None
    if svg_mode == "copy" or (svg_mode == "rasterize" and is_svg(data)):
        check_size(len(data), name, limits)
        if svg_mode == "copy":
            if not is_svg(data):
                found = identify(data, name, limits)
                raise fail(
                    "not-svg",
                    name,
                    f"named as an SVG, it holds a {found.label} image",
                    "an SVG document",
                    "rename it after what it holds",
                    "load",
                )
            return svg.SvgCopy(data, name)
        svg.prescan(data, name, limits)
        kind = svg.SVG
    else:
        kind = identify(data, name, limits)
    info = read_header(kind, data, name, limits)
    return Source(data, kind, info, name)
