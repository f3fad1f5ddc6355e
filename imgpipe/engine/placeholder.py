"""Placeholders: a dominant colour, a tiny blurred preview (LQIP), and its ThumbHash and
BlurHash strings (engine/hashes.py) per source.

Computed from a small decode fixed by the source alone (shared with renditions loaded at the
same size), so the manifest never depends on which renditions were built with it. Both go into
the manifest; templates put them in a `style` (or the hashes in a data- attribute for a
script to draw) while the real image loads.
"""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np
import pyvips

from ..model import Placeholder
from . import hashes
from .transform import plain_srgb

# The preview's longer side, in pixels: tried in order until the data URI fits the budget.
# The browser stretches it to the image's box, which blurs it by itself; the blur below only
# takes the edge off the blocks a few bright pixels would make.
LQIP_SIDES = (24, 16, 12)
LQIP_QUALITY = 40
LQIP_BUDGET = 1000  # characters of the whole data URI: it travels inline in every page
SAMPLE_SIDE = 32  # the dominant colour is counted on at most 32 x 32 pixels
SVG_SIDE = 256  # an SVG's placeholder is drawn at most this large


def make(image: pyvips.Image) -> Placeholder | None:
    """The placeholder of a decoded image (3 bands, or 4 with alpha; sRGB or tagged Display
    P3); None if libvips cannot make one: a placeholder is a nicety that never fails a source.
    CSS colours and the tiny preview are plain sRGB."""
    try:
        image = plain_srgb(image)
        return Placeholder(
            color=dominant_colour(image),
            lqip=lqip(image),
            thumbhash=hashes.thumbhash(_pixels(_thumbnail(image, hashes.THUMBHASH_SIDE), 4)),
            blurhash=hashes.blur_hash(_pixels(_thumbnail(image, hashes.THUMBHASH_SIDE), 3)),
        )
    except pyvips.Error:
        return None


def lqip(image: pyvips.Image) -> str:
    """A WebP data URI of at most LQIP_BUDGET characters (transparency kept)."""
    uri = ""
    for side in LQIP_SIDES:
        tiny = _thumbnail(image, side)
        if tiny.width >= 3 and tiny.height >= 3:
            tiny = _blur(tiny)
        data = tiny.webpsave_buffer(Q=LQIP_QUALITY, effort=6, smart_subsample=True, keep="none")
        uri = "data:image/webp;base64," + base64.b64encode(data).decode("ascii")
        if len(uri) <= LQIP_BUDGET:
            break
    return uri


def dominant_colour(image: pyvips.Image) -> str:
    """The most common colour, as "#rrggbb": pixels are counted in coarse buckets (4 bits a
    channel), then the winning bucket's pixels are averaged, so a photo of a blue sky says
    blue rather than a muddy mean of everything. Mostly transparent pixels do not vote."""
    tiny = _thumbnail(image, SAMPLE_SIDE)
    bands = tiny.bands
    pixels = bytes(tiny.write_to_memory())
    buckets: Counter[tuple[int, int, int]] = Counter()
    sums: dict[tuple[int, int, int], list[int]] = {}
    for start in range(0, len(pixels), bands):
        r, g, b = pixels[start], pixels[start + 1], pixels[start + 2]
        if bands == 4 and pixels[start + 3] < 128:
            continue
        bucket = (r >> 4, g >> 4, b >> 4)
        buckets[bucket] += 1
        total = sums.setdefault(bucket, [0, 0, 0])
        total[0] += r
        total[1] += g
        total[2] += b
    if not buckets:  # fully transparent: nothing to show, and white hides nothing
        return "#ffffff"
    bucket, count = buckets.most_common(1)[0]
    return "#" + "".join(f"{round(v / count):02x}" for v in sums[bucket])


def _pixels(image: pyvips.Image, bands: int) -> np.ndarray:
    """Height x width x `bands` (3: alpha flattened onto white; 4: opaque alpha added)."""
    if bands == 3 and image.hasalpha():
        image = image.flatten(background=[255, 255, 255]).cast("uchar")
    elif bands == 4 and not image.hasalpha():
        image = image.bandjoin(255)
    return np.frombuffer(image.write_to_memory(), np.uint8).reshape(
        image.height, image.width, bands
    )


def _thumbnail(image: pyvips.Image, side: int) -> pyvips.Image:
    # thumbnail_image premultiplies alpha, so transparent pixels' colours do not bleed in.
    return image.thumbnail_image(side, height=side, size="down").cast("uchar")


def _blur(image: pyvips.Image) -> pyvips.Image:
    alpha = image.hasalpha()
    if alpha:
        image = image.premultiply()
    out = image.gaussblur(0.6)
    if alpha:
        out = out.unpremultiply()
    return out.cast("uchar")
