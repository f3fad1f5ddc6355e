"""Encoders and the quality tables: which format, which encoder number, which settings.

quality=low|medium|high in JPEG, WebP and AVIF is a target score of the perceptual metric
(engine/metric.py); engine/optimise.py searches the encoder number that meets it. The tables
here are the one place to tune targets, search ranges and first guesses; everything else
reads them. A fixed quality=N goes to the encoder as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyvips

from ..errors import Problem
from ..formats import FORMATS
from .failure import fail
from .lossless import optimise_png
from .transform import plain_srgb

# quality preset -> target score (metric.py: 100 - 10 x predicted butteraugli 3-norm distance).
# Calibrated against butteraugli on photos outside the benchmark set (bench/bench_quality.py):
# high ~ butteraugli 0.9 (hard to tell from the original side by side), medium ~ 1.2 (what
# mozjpeg q80 / WebP q80 / AVIF q50 give on average, minus their bad cases), low ~ 1.7.
TARGETS: dict[str, float] = {"low": 83.0, "medium": 88.0, "high": 91.0}


@dataclass(frozen=True)
class Scale:
    """How a format's encoder quality behaves under the search (fitted on the same photos)."""

    low: int  # search range: below it nothing is worth sending; above it, lossless is better
    high: int
    slope: float  # score gained per quality step near the targets: sizes the first steps
    drift: float  # quality change per doubling of width at the same score (bigger needs less)


SCALES: dict[str, Scale] = {
    "jpeg": Scale(25, 95, slope=0.25, drift=-1.0),
    "webp": Scale(25, 95, slope=0.25, drift=0.0),
    "avif": Scale(15, 95, slope=0.30, drift=-3.0),
}
GUESS_WIDTH = 480  # the width the searched formats' PRESETS were measured at

# Per-format corrections of the targets: the metric predicts butteraugli with a small bias that
# depends on the format and the size. The target for a rendition `width` px wide is
# TARGETS[preset] + shift + slope x log2(width / GUESS_WIDTH), the log clamped to
# CORRECTED_OCTAVES. First fitted from real searches on 5 calibration photos at 480 and 1200 px
# (bench_quality.py quality --set calibration, then `corrections`); when the metric was
# refitted, moved by how much its simulated landings on the 19 calibration photos moved
# (bench/metric_fit.py). Held-out figures: README, Quality.
TARGET_SHIFT: dict[str, float] = {"jpeg": -0.08, "webp": 0.03, "avif": 0.16}
TARGET_SLOPE: dict[str, float] = {"jpeg": -0.84, "webp": 0.32, "avif": 0.08}
CORRECTED_OCTAVES = (-1.0, 2.0)


def target_of(preset: str, fmt: str, width: int) -> float:
    """The score a `width` px rendition in `fmt` must reach for `preset` (a searched format)."""
    low, high = CORRECTED_OCTAVES
    octaves = min(max(math.log2(max(width, 1) / GUESS_WIDTH), low), high)
    return TARGETS[preset] + TARGET_SHIFT[fmt] + TARGET_SLOPE[fmt] * octaves


# quality preset -> encoder number, per format. JPEG/WebP/AVIF: the first guess of the search
# (the median quality meeting the target at GUESS_WIDTH), and the setting used as it is when
# an image is too small to score. PNG: the libimagequant quality ceiling for palette PNGs
# (high is lossless PNG). GIF: bits of palette.
PRESETS: dict[str, dict[str, int]] = {
    "jpeg": {"low": 48, "medium": 72, "high": 85},
    "webp": {"low": 47, "medium": 77, "high": 86},
    "avif": {"low": 45, "medium": 57, "high": 70},
    "png": {"low": 60, "medium": 80},
    "gif": {"low": 7, "medium": 8, "high": 8},
}

# aom's CPU effort (0..9; libvips' default is 4). AVIF dominates build time. Measured on
# 1600 px photos (bench/): effort 4 costs ~6x a mozjpeg JPEG plus a WebP of the same image;
# effort 3 costs about as much as both, for files ~1% larger than effort 4 and ~7% smaller
# than effort 2 at the same Q and PSNR.
AVIF_EFFORT = 3
# aom's tuning (libvips' default is "iq"). Measured with the real search on the 19 calibration
# photos at 480 and 1200 px (medium, probes included): "ssim" took 26% less CPU for 6% more
# bytes at the same butteraugli (mean 1.17, worst 1.38 against 1.40); AVIF is most of a default
# build's CPU, which this alone cuts by a fifth. "psnr": 19% less CPU on 8 of them, for 4% more
# bytes than "ssim". Effort 2 instead of 3 saves as much CPU but costs 13-18% more bytes.
AVIF_TUNE = "ssim"
# libimagequant / cgif quantisation effort (1..10): cheap for web-sized images.
PALETTE_EFFORT = 7
PNG_COMPRESSION = 1  # oxipng recompresses anyway (lossless.py)

_MOZJPEG = dict(
    optimize_coding=True,
    trellis_quant=True,
    overshoot_deringing=True,
    optimize_scans=True,
    quant_table=3,
    interlace=True,
)


@dataclass(frozen=True)
class Encoding:
    """What the encoder is asked for. `quality` is the preset or number actually used."""

    format: str
    quality: str | int
    encoder_quality: int | None  # the setting, or the search's first guess
    lossless: bool = False
    palette: bool = False
    target: float | None = None  # search for the lowest quality meeting this score
    ceiling: int | None = None  # the highest quality the search may use
    full_chroma: bool = False  # JPEG: no chroma subsampling at any quality
    sharp_yuv: bool = False  # WebP: sharp YUV chroma subsampling (see encode)


def plan(
    fmt: str,
    quality: str | int,
    resizes: bool,
    few_colours: bool,
    jpeg_cap: int | None = None,
    width: int = GUESS_WIDTH,
) -> tuple[Encoding, tuple[Problem, ...]]:
    """The encoder settings for `quality` in `fmt` for a `width` px rendition, and why they
    differ from what was asked."""
    warnings: list[Problem] = []
    if quality == "lossless" and resizes:
        warnings.append(
            Problem(
                "lossless-resized",
                "quality=lossless holds only when the image "
                "is not resized; encoded at quality=high",
            )
        )
        quality = "high"
    if quality == "lossless" and fmt == "jpeg":
        # JPEG has no lossless mode browsers show: say so rather than pretend.
        warnings.append(
            Problem(
                "lossless-jpeg",
                "JPEG cannot keep every pixel; encoded at "
                "quality=high (use format=png or format=webp for lossless)",
            )
        )
        quality = "high"
    if quality == "lossless":
        if fmt == "gif" and not few_colours:
            warnings.append(
                Problem(
                    "lossless-gif",
                    "GIF holds at most 256 colours; this image has more, so they are reduced",
                )
            )
        return Encoding(fmt, "lossless", None, lossless=True), tuple(warnings)

    number = quality if isinstance(quality, int) else PRESETS[fmt].get(quality)
    if fmt == "png":
        if number is None:  # high: lossless PNG, as a PNG of a graphic should be
            return Encoding(fmt, quality, None, lossless=True), tuple(warnings)
        return Encoding(fmt, quality, number, palette=True), tuple(warnings)
    if fmt == "gif":  # a fixed quality=N means nothing to a palette: full 8 bits
        bits = PRESETS["gif"][quality] if isinstance(quality, str) else 8
        return Encoding(fmt, quality, bits), tuple(warnings)
    ceiling = SCALES[fmt].high if fmt in SCALES else None
    if fmt == "jpeg" and jpeg_cap is not None:
        # Never above the source's own quality (DESIGN §2): the same artefacts, more bytes.
        number = min(number, jpeg_cap)
        ceiling = min(ceiling or jpeg_cap, jpeg_cap)
    if isinstance(quality, str) and fmt in SCALES:
        target = target_of(quality, fmt, width)
        return Encoding(fmt, quality, number, target=target, ceiling=ceiling), tuple(warnings)
    return Encoding(fmt, quality, number), tuple(warnings)


# The longest side each encoder writes (libjpeg, libwebp, libvips' heifsave, GIF's 16 bits);
# PNG has no practical limit. Past it libvips fails mid-encode, which is a refusal to word
# as one, not an engine bug to report.
MAX_SIDES = {
    "jpeg": ("JPEG", 65_500),
    "webp": ("WebP", 16_383),
    "avif": ("AVIF", 16_384),
    "gif": ("GIF", 65_535),
}


def check_fits(fmt: str, width: int, height: int, name: str) -> None:
    """Raise an ImageError when a `width` x `height` rendition is too large for `fmt`."""
    label, limit = MAX_SIDES.get(fmt, (fmt, math.inf))
    if max(width, height) > limit:
        raise fail(
            "too-many-pixels",
            name,
            f"a {width}x{height} {label} is too large: {label} holds at most {limit} pixels a side",
            f"a rendition of at most {limit} pixels a side in {label}",
            "ask for a smaller size, or format=png",
            "encode",
        )


# libvips' name of each kind of metadata an image may carry -> its `keep=` flag, and the PNG
# chunk that holds it (oxipng keeps those chunks and strips the rest).
_KEPT = {
    "icc-profile-data": ("icc", b"iCCP"),
    "exif-data": ("exif", b"eXIf"),
    "xmp-data": ("xmp", b"iTXt"),
    "iptc-data": ("iptc", b"zTXt"),  # libvips writes IPTC to PNG as a raw-profile text chunk
}


def keep_of(image: pyvips.Image) -> str:
    """The `keep=` flags that write what `image` carries: what the source's pipeline left on
    it (a wide-gamut profile; EXIF and XMP as the metadata policy allows) and nothing else."""
    flags = [flag for field, (flag, _) in _KEPT.items() if image.get_typeof(field)]
    return ",".join(flags) or "none"


def encode(image: pyvips.Image, enc: Encoding, seconds: float = math.inf) -> bytes:
    """Encoded bytes with only the metadata `image` carries (`keep_of`). `seconds` bounds the
    optional lossless optimisation of a PNG."""
    q = enc.encoder_quality
    keep = keep_of(image)
    if enc.format == "jpeg":
        # A search keeps one chroma mode at every quality: mozjpeg's own switch to full
        # chroma at q90 jumps the score by ~5 points in one step, so searches for a target
        # just above q89 landed far above it (butteraugli 0.75-0.9 for medium's 1.2).
        subsample = "auto" if enc.target is None else "off" if enc.full_chroma else "on"
        return image.jpegsave_buffer(Q=q, keep=keep, subsample_mode=subsample, **_MOZJPEG)
    if enc.format == "png":
        # libvips writes fast; oxipng then finds the filters and deflate that libvips' zlib
        # would not (a third smaller on photos, a few percent on palette graphics).
        if enc.palette:
            data = image.pngsave_buffer(
                palette=True,
                Q=q,
                effort=PALETTE_EFFORT,
                dither=1.0,
                compression=PNG_COMPRESSION,
                keep=keep,
            )
        else:
            data = image.pngsave_buffer(compression=PNG_COMPRESSION, keep=keep)
        chunks = [chunk for field, (_, chunk) in _KEPT.items() if image.get_typeof(field)]
        return optimise_png(data, seconds, chunks)
    if enc.format == "webp":
        if enc.lossless:
            # exact: keep the colour under fully transparent pixels too: every pixel kept.
            return image.webpsave_buffer(lossless=True, exact=True, keep=keep)
        # libwebp's own chroma subsampling unless asked: sharp YUV (smart_subsample) costs
        # 2.6x the CPU of the encode, for files 2-3% smaller at the same score on 1600 px
        # photos; the search makes up for the score, and tries sharp YUV too when plain
        # subsampling needs quality 90 or more (optimise.search, SHARP_YUV_FROM).
        return image.webpsave_buffer(Q=q, smart_subsample=enc.sharp_yuv, keep=keep)
    if enc.format == "avif":
        if enc.lossless:
            return image.heifsave_buffer(
                compression="av1", lossless=True, effort=AVIF_EFFORT, keep=keep
            )
        return image.heifsave_buffer(
            compression="av1", Q=q, effort=AVIF_EFFORT, tune=AVIF_TUNE, keep=keep
        )
    if enc.format == "gif":  # no place for a profile: colours outside sRGB are clipped
        image = plain_srgb(image)
        return image.gifsave_buffer(
            bitdepth=q or 8,
            effort=PALETTE_EFFORT,
            dither=0.0 if enc.lossless else 1.0,
            keep="none",
        )
    raise ValueError(f"no encoder for {enc.format!r}")  # video formats never get here


def keeps_alpha(fmt: str) -> bool:
    return FORMATS[fmt].alpha
