"""Encoders and the quality table: which format, which encoder number, which settings.

Presets map to fixed per-format numbers for now (a later issue makes them perceptual). The
table is the one place to tune them; everything else reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from ..errors import Problem
from ..formats import AUTO, FORMATS

# quality preset -> encoder number, per format. JPEG/WebP/AVIF: the encoder's Q. PNG: the
# libimagequant quality ceiling for palette PNGs (high is lossless PNG). GIF: bits of palette.
PRESETS: dict[str, dict[str, int]] = {
    "jpeg": {"low": 60, "medium": 75, "high": 88},
    "webp": {"low": 60, "medium": 75, "high": 88},
    "avif": {"low": 40, "medium": 52, "high": 66},
    "png": {"low": 60, "medium": 80},
    "gif": {"low": 7, "medium": 8, "high": 8},
}

# aom's CPU effort (0..9; libvips' default is 4). AVIF dominates build time. Measured on
# 1600 px photos (bench/): effort 4 costs ~6x a mozjpeg JPEG plus a WebP of the same image;
# effort 3 costs about as much as both, for files ~1% larger than effort 4 and ~7% smaller
# than effort 2 at the same Q and PSNR.
AVIF_EFFORT = 3
# libimagequant / cgif quantisation effort (1..10): cheap for web-sized images.
PALETTE_EFFORT = 7
PNG_COMPRESSION = 9

_MOZJPEG = dict(optimize_coding=True, trellis_quant=True, overshoot_deringing=True,
                optimize_scans=True, quant_table=3, interlace=True)


@dataclass(frozen=True)
class Encoding:
    """What the encoder is asked for. `quality` is the preset or number actually used."""

    format: str
    quality: str | int
    encoder_quality: int | None
    lossless: bool = False
    palette: bool = False


def choose_format(requested: str, alpha_used: bool, few_colours: bool,
                  lossless: bool = False) -> str:
    """format=auto: PNG for transparency in use, few colours (graphics) or a lossless request
    that can hold (JPEG cannot keep every pixel), else JPEG."""
    if requested != AUTO:
        return requested
    return "png" if alpha_used or few_colours or lossless else "jpeg"


def plan(fmt: str, quality: str | int, resizes: bool, few_colours: bool,
         jpeg_cap: int | None = None) -> tuple[Encoding, tuple[Problem, ...]]:
    """The encoder settings for `quality` in `fmt`, and why they differ from what was asked."""
    warnings: list[Problem] = []
    if quality == "lossless" and resizes:
        warnings.append(Problem("lossless-resized", "quality=lossless holds only when the image "
                                "is not resized; encoded at quality=high"))
        quality = "high"
    if quality == "lossless" and fmt == "jpeg":
        # JPEG has no lossless mode browsers show: say so rather than pretend.
        warnings.append(Problem("lossless-jpeg", "JPEG cannot keep every pixel; encoded at "
                                "quality=high (use format=png or format=webp for lossless)"))
        quality = "high"
    if quality == "lossless":
        if fmt == "gif" and not few_colours:
            warnings.append(Problem("lossless-gif", "GIF holds at most 256 colours; this image "
                                    "has more, so they are reduced"))
        return Encoding(fmt, "lossless", None, lossless=True), tuple(warnings)

    number = quality if isinstance(quality, int) else PRESETS[fmt].get(quality)
    if fmt == "png":
        if number is None:  # high: lossless PNG, as a PNG of a graphic should be
            return Encoding(fmt, quality, None, lossless=True), tuple(warnings)
        return Encoding(fmt, quality, number, palette=True), tuple(warnings)
    if fmt == "gif":  # a fixed quality=N means nothing to a palette: full 8 bits
        bits = PRESETS["gif"][quality] if isinstance(quality, str) else 8
        return Encoding(fmt, quality, bits), tuple(warnings)
    if fmt == "jpeg" and jpeg_cap is not None and number > jpeg_cap:
        number = jpeg_cap  # never above the source's own quality (DESIGN §2)
    return Encoding(fmt, quality, number), tuple(warnings)


def encode(image: pyvips.Image, enc: Encoding) -> bytes:
    """Encoded bytes, metadata stripped (keep=none: no EXIF, XMP or ICC; the pixels are sRGB)."""
    q = enc.encoder_quality
    if enc.format == "jpeg":
        return image.jpegsave_buffer(Q=q, keep="none", **_MOZJPEG)
    if enc.format == "png":
        if enc.palette:
            return image.pngsave_buffer(palette=True, Q=q, effort=PALETTE_EFFORT, dither=1.0,
                                        compression=PNG_COMPRESSION, keep="none")
        return image.pngsave_buffer(compression=PNG_COMPRESSION, keep="none")
    if enc.format == "webp":
        if enc.lossless:
            # exact: keep the colour under fully transparent pixels too: every pixel kept.
            return image.webpsave_buffer(lossless=True, exact=True, keep="none")
        return image.webpsave_buffer(Q=q, smart_subsample=True, keep="none")
    if enc.format == "avif":
        if enc.lossless:
            return image.heifsave_buffer(compression="av1", lossless=True,
                                         effort=AVIF_EFFORT, keep="none")
        return image.heifsave_buffer(compression="av1", Q=q, effort=AVIF_EFFORT, keep="none")
    if enc.format == "gif":
        return image.gifsave_buffer(bitdepth=q or 8, effort=PALETTE_EFFORT,
                                    dither=0.0 if enc.lossless else 1.0, keep="none")
    raise ValueError(f"no encoder for {enc.format!r}")  # video formats never get here


def keeps_alpha(fmt: str) -> bool:
    return FORMATS[fmt].alpha
