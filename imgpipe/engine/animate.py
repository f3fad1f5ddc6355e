"""Animated sources (GIF, WebP): every frame resized and cropped alike, timing and loop kept.

libvips decodes an animation as a strip of frames one above the other, `page-height` rows
each, with `delay` (ms per frame) and `loop` (plays; 0 = forever). The frames are shaped one
by one, never as a strip: a resize kernel run over the strip would blend the last rows of one
frame into the first rows of the next. Encoders take a strip with the same metadata back.

format=auto keeps an animation a GIF: like JPEG/PNG for stills, auto means "what every browser
shows". Animated WebP (much smaller) and video are asked for by name, usually as the modern
`<source>`s of a srcset family. JPEG, PNG and AVIF outputs get the first frame, with a warning.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass

import pyvips

from ..errors import ImageError, Problem
from ..formats import AUTO, FORMATS
from ..geometry import Geometry, compute
from ..model import Rendition
from ..options import Recipe
from . import clip
from .encode import SCALES, TARGETS, check_fits, plan
from .failure import because, fail
from .load import decode, out_of_time, watched, watched_until
from .optimise import guess_of
from .sniff import Kind
from .transform import alpha_in_use, cut, fixed_cut, resize_exact, settle_alpha, shape, to_srgb

# Browsers show a GIF frame of 10 ms or less for 100 ms (a legacy of old encoders that wrote
# 0); WebP and video players take delays literally, so they get what the GIF really showed.
BROWSER_MIN_DELAY, BROWSER_DEFAULT_DELAY = 10, 100
# GIF settings from worst to best: (bits of palette, interframe_maxerror: how far (0..32) a
# pixel may drift from the previous frame and still be left transparent, which lets unchanged
# areas cost nothing). A preset's perceptual target picks the step (clip.py), as it picks a
# WebP's quality; GIF_GUESS is where that search starts, and what an animation too small to
# score gets. On a panned photo GIF (320x240, 8 frames) a step scores 0.5-2.5 points above the
# one before (one bit of palette: about 4). Dithering is kept low: dither patterns that differ
# from frame to frame crawl and defeat the reuse of unchanged areas.
GIF_LADDER = (
    *((7, e) for e in (16, 8)),
    *((8, e) for e in (16, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1, 0)),
)
GIF_GUESS = {"low": 3, "medium": 5, "high": 8}
GIF_SLOPE = 1.2  # score gained per step (for the search's first steps)
GIF_DITHER = 0.5
GIF_EFFORT = 7


@dataclass(frozen=True)
class Frames:
    """A decoded animation: sRGB frames in memory, all the same size."""

    images: tuple[pyvips.Image, ...]
    delays: tuple[int, ...]  # ms, as the source says
    loop: int  # 0 = forever

    @property
    def first(self) -> pyvips.Image:
        return self.images[0]

    def shown_delays(self) -> tuple[int, ...]:
        return tuple(BROWSER_DEFAULT_DELAY if d <= BROWSER_MIN_DELAY else d for d in self.delays)


def keeps_motion(fmt: str) -> bool:
    """Whether a rendition in `fmt` of an animated source is animated too."""
    return fmt == AUTO or FORMATS[fmt].animated


def load(kind: Kind, data: bytes, name: str) -> Frames:
    """Every frame, decoded once into memory."""
    strip = decode(kind, data, name, n=-1)
    height = strip.get("page-height") if strip.get_typeof("page-height") else strip.height
    count = max(1, strip.height // height)
    delays = list(strip.get("delay")) if strip.get_typeof("delay") else []
    delays = (delays + [BROWSER_DEFAULT_DELAY] * count)[:count]
    loop = strip.get("loop") if strip.get_typeof("loop") else 0
    if strip.get_typeof("orientation"):  # a turn of the whole strip would shuffle the frames
        strip = strip.copy()
        strip.remove("orientation")
    try:
        converted = to_srgb(strip)
        if converted is not strip:  # (watched() must get a fresh image: see there)
            strip = watched(converted).copy_memory()
    except pyvips.Error as error:
        raise out_of_time(name) or fail(
            "decode-failed",
            name,
            f"cannot convert it to sRGB{because(error)}",
            f"a valid {kind.label} file",
            "re-export it in RGB",
            "decode",
        ) from None
    frames = tuple(strip.crop(0, i * height, strip.width, height) for i in range(count))
    return Frames(frames, tuple(delays), loop)


def first_frame_warning(fmt: str, frames: int) -> Problem:
    return Problem(
        "animation-dropped",
        f"{FORMATS[fmt].name.upper()} holds one frame: the "
        f"first of {frames} is used (format=webp, gif, webm or h264 keep the motion)",
    )


def render(frames: Frames, recipe: Recipe, name: str, spent: float = 0.0) -> Rendition | ImageError:
    """One animated rendition (GIF, WebP or video) of every frame; `spent`: seconds the
    decode took, already gone from timeout=."""
    deadline = time.monotonic() + recipe.timeout - spent
    stage = "transform"
    try:
        warnings = list(recipe.warnings)
        images = frames.images
        if recipe.trim:
            images, trimmed = _trim(images)
            warnings.extend(trimmed)
        geometry = compute(recipe, images[0].width, images[0].height)
        images = _shape(images, geometry, recipe, deadline)
        fmt = "gif" if recipe.format == AUTO else recipe.format
        check_fits(fmt, geometry.width, geometry.height, name)
        stage = "encode"
        if FORMATS[fmt].video:
            from . import video  # PyAV is loaded only when a video is asked for

            flat = [settle_alpha(image, False, recipe.bgcolor) for image in images]
            data, width, height, crf, planned, score = video.encode(
                flat, frames.shown_delays(), fmt, recipe.quality, deadline, name
            )
            warnings.extend(planned)
            used = "high" if recipe.quality == "lossless" else recipe.quality
            return Rendition(data, fmt, width, height, used, crf, tuple(warnings), score)
        data, quality, encoder_quality, planned, score = _encode_animation(
            images, frames, fmt, recipe, geometry.changes_pixels, deadline
        )
        warnings.extend(planned)
    except TimeoutError:
        return _timed_out(recipe, name, stage)
    except ImageError as error:
        return error
    except pyvips.Error as error:
        if time.monotonic() > deadline:  # libvips was told to stop
            return _timed_out(recipe, name, stage)
        verb = "encode" if stage == "encode" else "process"
        return fail(
            f"{stage}-failed",
            name,
            f"cannot {verb} the animation as {recipe}{because(error)}",
            "an animation libvips can work on",
            "report this file to imgpipe",
            stage,
        )
    return Rendition(
        data, fmt, geometry.width, geometry.height, quality, encoder_quality, tuple(warnings), score
    )


def _timed_out(recipe: Recipe, name: str, stage: str) -> ImageError:
    return fail(
        "timeout",
        name,
        f"{recipe} took longer than timeout={recipe.timeout:g}s",
        "a rendition within its time budget",
        "raise timeout=, or ask for a smaller size or fewer frames",
        stage,
    )


def _shape(
    images: tuple[pyvips.Image, ...], geometry: Geometry, recipe: Recipe, deadline: float
) -> list[pyvips.Image]:
    """Every frame through the same geometry. crop=auto looks for the interesting area once,
    on the first frame, and cuts every frame there: a window that moved from frame to frame
    would shake."""
    auto_crop = (
        recipe.mode == "crop"
        and recipe.gravity == "auto"
        and (geometry.width, geometry.height) != (geometry.scaled_width, geometry.scaled_height)
    )
    window = None
    out = []
    geometry = fixed_cut(images[0], geometry)
    for image in images:
        if time.monotonic() > deadline:
            raise TimeoutError
        if auto_crop:
            resized = resize_exact(
                cut(image, geometry), geometry.scaled_width, geometry.scaled_height
            )
            if window is None:
                window = _attention(resized, geometry.width, geometry.height)
            out.append(resized.crop(*window, geometry.width, geometry.height).copy_memory())
        else:
            shaped = shape(image, geometry, recipe)
            # An unchanged frame stays a view of the decoded strip: copying every frame of a
            # 100-megapixel animation would hold its pixels twice.
            out.append(shaped if shaped is image else shaped.copy_memory())
    return out


def _attention(image: pyvips.Image, width: int, height: int) -> tuple[int, int]:
    _, found = image.smartcrop(
        width, height, interesting="attention", attention_x=True, attention_y=True
    )
    left = min(max(found["attention_x"] - width // 2, 0), image.width - width)
    top = min(max(found["attention_y"] - height // 2, 0), image.height - height)
    return left, top


def _trim(images: tuple[pyvips.Image, ...]) -> tuple[tuple[pyvips.Image, ...], tuple[Problem, ...]]:
    """Trim the border that every frame shares (the first frame's top-left colour)."""
    corner = images[0].getpoint(0, 0)
    mask = None
    for index, image in enumerate(images):
        differs = (image != corner).bandor()
        mask = differs if mask is None else mask | differs
        if index % 32 == 31:  # keep the pipeline shallow on long animations
            mask = mask.copy_memory()
    left, top, width, height = mask.find_trim(threshold=0, background=[0], line_art=True)
    if width == 0 or height == 0:
        return images, (
            Problem("nothing-to-trim", "every frame is a single colour: nothing to trim"),
        )
    return tuple(image.crop(left, top, width, height) for image in images), ()


def _encode_animation(
    images: list[pyvips.Image],
    frames: Frames,
    fmt: str,
    recipe: Recipe,
    changes_pixels: bool,
    deadline: float,
) -> tuple[bytes, str | int, int | None, tuple[Problem, ...], float | None]:
    """(bytes, quality used, encoder number, warnings, score on the sample frames)."""
    # Not copied to memory: the frames already are (or are views of the decoded strip), so
    # joining them again for the encoder costs little, and a copy would cost a whole strip.
    strip = pyvips.Image.arrayjoin(images, across=1)
    used = alpha_in_use(strip)
    strip = settle_alpha(strip, used, recipe.bgcolor).copy()
    height = images[0].height
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(
        pyvips.GValue.array_int_type,
        "delay",
        list(frames.delays if fmt == "gif" else frames.shown_delays()),
    )
    strip.set_type(pyvips.GValue.gint_type, "loop", frames.loop)
    watched_until(strip, deadline)
    quality, warnings = recipe.quality, []
    if quality == "lossless" and changes_pixels:
        warnings.append(
            Problem(
                "lossless-resized",
                "quality=lossless holds only when the "
                "image is not resized; encoded at quality=high",
            )
        )
        quality = "high"
    if fmt == "webp":
        if quality == "lossless":
            data = strip.webpsave_buffer(lossless=True, exact=True, keep="none")
            return _in_time(data, deadline), quality, None, tuple(warnings), 100.0
        if isinstance(quality, int):
            q, score = quality, None
        else:
            encoding, _ = plan("webp", quality, True, False, width=strip.width)
            assert encoding.target is not None and encoding.ceiling is not None
            scale = SCALES["webp"]
            q, score = _searched(
                strip,
                len(images),
                "webp",
                encoding.target,
                (scale.low, encoding.ceiling, scale.slope),
                guess_of(strip.width, encoding),
                deadline,
            )
            q = encoding.encoder_quality if q is None else q
        return _in_time(_webp(strip, q), deadline), quality, q, tuple(warnings), score
    top = len(GIF_LADDER) - 1
    if quality == "lossless":
        return _in_time(_gif(strip, top, 0.0), deadline), quality, top, tuple(warnings), None
    if isinstance(quality, int):  # a number means nothing to a palette: the best GIF
        return _in_time(_gif(strip, top), deadline), quality, top, tuple(warnings), None
    guess = GIF_GUESS[quality]
    step, score = _searched(
        strip, len(images), "gif", TARGETS[quality], (0, top, GIF_SLOPE), guess, deadline
    )
    step = guess if step is None else step
    return _in_time(_gif(strip, step), deadline), quality, step, tuple(warnings), score


def _webp(strip: pyvips.Image, q: int) -> bytes:
    # mixed: each frame lossy or lossless, whichever is smaller (cartoons vs photos)
    return strip.webpsave_buffer(Q=q, mixed=True, smart_subsample=True, effort=4, keep="none")


def _gif(strip: pyvips.Image, step: int, dither: float = GIF_DITHER) -> bytes:
    bits, error = GIF_LADDER[step]
    return strip.gifsave_buffer(
        effort=GIF_EFFORT, bitdepth=bits, dither=dither, interframe_maxerror=error, keep="none"
    )


_ENCODERS = {"webp": _webp, "gif": _gif}
_LOADERS = {"webp": pyvips.Image.webpload_buffer, "gif": pyvips.Image.gifload_buffer}


def _searched(
    strip: pyvips.Image,
    count: int,
    fmt: str,
    target: float,
    scale: tuple[int, int, float],
    guess: int,
    deadline: float,
) -> tuple[int | None, float | None]:
    """The lowest setting of `fmt` (WebP quality, GIF_LADDER step) meeting `target` on a clip
    of the animation, and its score; (None, None) when the frames are too small to score."""
    height = strip.get("page-height")
    length = clip.clip_length(strip.width, height, count)
    if not clip.scorable(strip.width, height, length):
        return None, None
    part = strip.crop(0, 0, strip.width, length * height).copy_memory()
    part.set_type(pyvips.GValue.array_int_type, "delay", list(strip.get("delay"))[:length])
    encoder, loader = _ENCODERS[fmt], _LOADERS[fmt]
    starts = list(itertools.accumulate(part.get("delay"), initial=0))

    def decode(data: bytes, chosen: list[int]) -> list[pyvips.Image]:
        # An encoder may fold a frame that repeats the one before into it (cgif, libwebp): what
        # is scored is the page showing when each chosen frame starts. (A clip is small.)
        whole = loader(data, n=-1)
        delays = whole.get("delay") if whole.get_typeof("delay") else [starts[-1]]  # one frame
        shown = list(itertools.accumulate(delays, initial=0))
        pages = [max(bisect.bisect_right(shown, starts[i]) - 1, 0) for i in chosen]
        return [whole.crop(0, j * height, whole.width, height) for j in pages]

    found = clip.search(
        [part.crop(0, i * height, part.width, height) for i in range(length)],
        lambda setting: encoder(part, setting),
        decode,
        fmt,
        target,
        scale,
        guess,
        deadline,
    )
    return found.quality, found.score


def _in_time(data: bytes, deadline: float) -> bytes:
    if time.monotonic() > deadline:
        raise TimeoutError
    return data
