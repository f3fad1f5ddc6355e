"""Reading sources safely: allow-listed loaders only, limits checked on the header, pixels
decoded once into memory with truncation treated as an error, and within the time budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import pyvips

from ..errors import ImageError
from ..model import Limits, SourceInfo
from . import diagnostics
from .failure import because, fail, megapixels, size_text, vips_reason
from .sniff import ALLOWED_LABELS, Kind, claimed_size, is_complete, sniff


def _harden_libvips() -> None:
    # Defence in depth behind the byte sniffing in sniff.py: even if some code path asked
    # libvips to pick a loader itself (new_from_buffer, thumbnail_buffer...), every loader
    # outside the allow-list is blocked, and so is everything libvips marks as untrusted.
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in ("Jpeg", "Png", "Webp", "Nsgif", "Tiff", "Heif"):
        pyvips.operation_block_set(f"VipsForeignLoad{name}", False)
    # libvips caches operations by their arguments; a new buffer that happens to reuse a freed
    # one's address (or a file replaced under the same name) could come back stale. Each
    # source is decoded once per render anyway, so the cache buys nothing here.
    pyvips.cache_set_max(0)
    # One libvips thread per render, on every machine: aom's AVIF bytes depend on the threads
    # libvips hands it (1, 2 and 4 give three different files), and a content-hashed name
    # must hold the same bytes on a laptop, a CI runner and a cluster worker. Builds and
    # `serve` run renders side by side instead (`jobs`, `--workers`); on a busy 2-core machine
    # one thread encoded a 1600 px AVIF no slower than two.
    pyvips.concurrency_set(1)
    diagnostics.install()  # libvips' log lines: collected, never printed (see there)


_harden_libvips()

# Truncated or corrupt pixel data must fail, not decode to a half-grey image. "truncated"
# is not enough: libtiff's seek errors and libpng's CRC errors are "errors" that otherwise
# decode to black or garbage rows (tests/test_hostile.py shows both). Plain decoder warnings
# (extraneous bytes, odd EXIF), common in camera files, still pass.
FAIL_ON = "error"
EXPECTED = ALLOWED_LABELS
# The longest side a source may have: the most a JPEG can hold, far beyond any rendition's
# box (10000 CSS px at 3x). Within the pixel limit a longer side means a sliver like 1x100
# million, whose hundred million one-pixel rows cost minutes of per-row work in the decoder
# and the resize (measured: 229 s and 440 MB for a 194 KB PNG) for nothing a page can show.
MAX_SIDE = 65_500


def identify(data: bytes, name: str, limits: Limits) -> Kind:
    """The allowed kind of `data`, or an ImageError for empty, oversized, unknown or blocked."""
    if not data:
        raise fail(
            "empty-file",
            name,
            "the file is empty (0 bytes)",
            EXPECTED,
            "re-export or re-download it",
        )
    check_size(len(data), name, limits)
    found = sniff(data)
    if found.kind:
        return found.kind
    if found.blocked:
        svg = "SVG" in found.blocked
        raise fail(
            "blocked-format",
            name,
            f"this is {found.blocked}, which imgpipe "
            + ("draws only from a file named .svg" if svg else "does not read"),
            EXPECTED,
            "name it .svg (a build publishes it as it is; `imgpipe optimize` draws it)"
            if svg
            else "convert it to PNG or JPEG first",
        )
    # Its bytes are never quoted: a link or a typo can point a build at any file (a key, a
    # password file), and error lines end up in CI logs.
    raise fail(
        "unknown-format",
        name,
        "not a recognised image",
        EXPECTED,
        "check that the file really is an image, not an HTML page or an archive",
    )


def check_size(size: int, name: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise fail(
            "file-too-large",
            name,
            f"{size_text(size)} is over the {size_text(limits.max_bytes)} input limit",
            f"at most {size_text(limits.max_bytes)}",
            "shrink the original, or raise the max_bytes limit",
        )


def _load(kind: Kind, data: bytes, **options) -> pyvips.Image:
    # Called only with an allow-listed loader name: never pyvips' own format detection.
    if kind.family == "svg":  # only ever after svg.prescan accepted the bytes
        with _svg_loader():
            return pyvips.Image.svgload_buffer(data, fail_on=FAIL_ON, **options)
    return getattr(pyvips.Image, kind.loader)(data, fail_on=FAIL_ON, **options)


_SVG_LOCK = threading.Lock()


@contextmanager
def _svg_loader() -> Iterator[None]:
    """librsvg, unblocked for one call. The block is process-wide, so calls are serialised:
    two overlapping calls would otherwise re-block under each other's feet. libvips checks
    the block when an operation is built, so pixels computed later need no unblocking."""
    with _SVG_LOCK:
        pyvips.operation_block_set("VipsForeignLoadSvg", False)
        try:
            yield
        finally:
            pyvips.operation_block_set("VipsForeignLoadSvg", True)


def read_header(kind: Kind, data: bytes, name: str, limits: Limits) -> SourceInfo:
    """Size, frames and alpha from the header alone, and the pixel limit, before any decoding."""
    claimed = claimed_size(kind.family, data)
    if claimed:  # checked before libvips parses anything: a bomb may not even have a header
        check_pixels(claimed[0], claimed[1], 1, name, limits)
        check_sides(claimed[0], claimed[1], name)
    try:
        header = _load(kind, data, access="sequential")
        width, height = header.width, header.height
        pages = header.get("n-pages") if header.get_typeof("n-pages") else 1
        orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        has_alpha = header.hasalpha()
    except pyvips.Error as error:
        failure = decode_failure(kind, data, name, error, stage="load")
    else:
        failure = None
    if failure:  # raised outside the except block: see decode()
        raise failure
    # Only animation frames count: the engine decodes the first page of a TIFF or HEIF only.
    frames = max(1, pages) if kind.animated else 1
    loop = header.get("loop") if frames > 1 and header.get_typeof("loop") else 0
    if frames > limits.max_frames:
        raise fail(
            "too-many-frames",
            name,
            f"the animation has {frames} frames, over the {limits.max_frames} frame limit",
            f"at most {limits.max_frames} frames",
            "shorten the animation, or raise the max_frames limit",
        )
    check_pixels(width, height, frames, name, limits)
    check_sides(width, height, name)
    if orientation in (5, 6, 7, 8):  # EXIF orientations that swap the axes
        width, height = height, width
    return SourceInfo(
        width=width,
        height=height,
        format=kind.family,
        bytes=len(data),
        frames=frames,
        has_alpha=bool(has_alpha),
        loop=loop,
    )


def check_pixels(width: int, height: int, frames: int, name: str, limits: Limits) -> None:
    pixels = width * height * frames
    if pixels > limits.max_pixels:
        what = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        raise fail(
            "too-many-pixels",
            name,
            f"{what} is {megapixels(pixels)}, over the {megapixels(limits.max_pixels)} limit",
            f"at most {megapixels(limits.max_pixels)} (width x height x frames)",
            "resize the original, or raise the max_pixels limit",
        )


def check_sides(width: int, height: int, name: str) -> None:
    if max(width, height) > MAX_SIDE:
        raise fail(
            "too-many-pixels",
            name,
            f"{width}x{height} has a side longer than {MAX_SIDE} pixels",
            f"sides of at most {MAX_SIDE} pixels (the largest JPEG)",
            "split or resize the original",
        )


# The deadline of the renditions being made on this thread (Source.render_all sets it around
# the decode they share): the decode stops there instead of running past every timeout=.
_DEADLINE: ContextVar[tuple[float, float]] = ContextVar("deadline", default=(math.inf, math.inf))


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Decodes inside stop `seconds` from now with a `timeout` ImageError."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def watched(image: pyvips.Image) -> pyvips.Image:
    """`image`, whose evaluation libvips abandons (a pyvips.Error) once the budget is spent.

    libvips checks the kill flag between tiles of the image being computed, so this must be
    the image a sink (copy_memory, a save) runs on, not one further up its pipeline. And a
    fresh one, dropped after that: the signal outlives this Python object, and pyvips aborts
    the process if a later evaluation of the same libvips image calls the dead callback."""
    deadline = _DEADLINE.get()[0]
    return image if math.isinf(deadline) else watched_until(image, deadline)


def watched_until(image: pyvips.Image, deadline: float) -> pyvips.Image:
    """`image`, whose evaluation libvips abandons once `time.monotonic()` passes `deadline`
    (the same rules as `watched`)."""
    image.set_progress(True)

    def on_eval(evaluated: pyvips.Image, _progress) -> None:
        if time.monotonic() > deadline:
            evaluated.set_kill(True)

    image.signal_connect("eval", on_eval)
    return image


def out_of_time(name: str, stage: str = "decode") -> ImageError | None:
    """The timeout error, if the budget is spent (a killed evaluation looks like any error)."""
    deadline, seconds = _DEADLINE.get()
    if time.monotonic() <= deadline:
        return None
    return fail(
        "timeout",
        name,
        f"decoding it took longer than timeout={seconds:g}s",
        "a source that decodes within its time budget",
        "raise timeout=, or shrink the original",
        stage,
    )


def jpeg_shrink(factor: float) -> int:
    """The JPEG shrink-on-load for an overall reduction `factor`, as libvips thumbnail does.

    DCT scaling is a crude box filter, so it stops at least 2x above the target and leaves the
    rest to a proper resize.
    """
    for shrink in (8, 4, 2):
        if factor >= 2 * shrink:
            return shrink
    return 1


def decode(kind: Kind, data: bytes, name: str, shrink: int = 1, **options) -> pyvips.Image:
    """All pixels of the first frame, decoded into memory (errors surface here, not later).

    `options` go to the loader: `n=-1` for every frame of an animation (a strip of frames one
    above the other, `page-height` tall each), `scale=` for the size an SVG is drawn at."""
    if kind.family == "jpeg" and shrink > 1:
        options["shrink"] = shrink
    try:
        # Sequential: the decoder streams once into memory; autorotation happens afterwards,
        # on the memory image, because a 90-degree turn reads rows out of order.
        return watched(_load(kind, data, access="sequential", **options)).copy_memory()
    except pyvips.Error as error:
        failure = out_of_time(name) or decode_failure(kind, data, name, error, "decode")
    # Raised here, not in the except block: the ImageError would keep the pyvips.Error as its
    # context, and with it the frames that hold the loader, until the garbage collector
    # frees it at some random point, maybe inside a log handler (see diagnostics.py).
    raise failure


# libheif's words when the codec of a HEIF file has no decoder in this build. pyvips' bundled
# libvips has none for HEVC (patent-encumbered), which is what iPhones write (.heic): that is a
# missing codec, not a corrupt file.
_NO_DECODER = ("has not been built in", "no decoding plugin", "unsupported codec")


def decode_failure(kind: Kind, data: bytes, name: str, error: pyvips.Error, stage: str):
    reason = vips_reason(error)
    detail = because(error)
    if kind.family == "heif" and any(s in str(error).lower() for s in _NO_DECODER):
        problem = (
            "it is a HEIC image: its pixels are HEVC-coded, and this build of libvips "
            "has no HEVC decoder"
            if "hevc" in str(error).lower()
            else "its pixels are in a codec this build of libvips cannot decode"
        )
        return fail(
            "unsupported-codec",
            name,
            problem + detail,
            "a JPEG, PNG, WebP, GIF, TIFF or AVIF image",
            "convert it to JPEG or AVIF first (or use a libvips built with libde265)",
            "load",
        )  # a refusal of the input's format, like blocked-format
    short = ("premature end", "truncated", "unexpected end", "end of file", "not enough")
    if any(s in (reason or "").lower() for s in short) or is_complete(kind.family, data) is False:
        return fail(
            "truncated",
            name,
            f"the {kind.label} data ends early{detail}",
            f"a complete {kind.label} file",
            "re-export or re-download it",
            stage,
        )
    return fail(
        "decode-failed",
        name,
        f"the {kind.label} data is corrupt{detail}",
        f"a valid {kind.label} file",
        "re-export it from the original",
        stage,
    )


def stream(kind: Kind, data: bytes, shrink: int = 1, **options) -> pyvips.Image:
    """The first frame as a lazy, read-once pipeline (what `decode` materialises): for a
    rendition that reads its pixels exactly once. Decode errors surface when it is read."""
    if kind.family == "jpeg" and shrink > 1:
        options["shrink"] = shrink
    return _load(kind, data, access="sequential", **options)
