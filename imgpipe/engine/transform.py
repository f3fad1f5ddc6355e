"""Pixel work between decode and encode: autorotate, sRGB, trim, resize, crop, pad, alpha.

Every size and position comes from `geometry.compute`; this module only carries it out, and
checks that libvips produced exactly that size.
"""

from __future__ import annotations

from dataclasses import replace

import pyvips

from ..errors import Problem
from ..geometry import Geometry
from ..options import Recipe


def rgb(hexcolor: str) -> list[int]:
    return [int(hexcolor[i : i + 2], 16) for i in (0, 2, 4)]


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Autorotated 8-bit sRGB: 3 bands, or 4 with alpha. No profile needs to travel with it.

    Returns `image` itself when it already is that, so callers can tell nothing was done.
    """
    if image.get_typeof("orientation") and image.get("orientation") != 1:
        image = image.autorot()
    image = _import_profile(image)
    if image.interpretation != "srgb" or image.format != "uchar":
        # Greyscale, 16-bit, Lab, scRGB... libvips knows the way to sRGB from each.
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands > 4:  # extra channels (e.g. spot colours): keep colour and alpha
        image = image.extract_band(0, n=4 if image.hasalpha() else 3)
    elif image.bands < 3:
        image = image.colourspace("srgb")
    return image


def _import_profile(image: pyvips.Image) -> pyvips.Image:
    try:
        if image.get_typeof("icc-profile-data"):
            # CMYK, wide-gamut and 16-bit sources through their own profile.
            return image.icc_transform("srgb", embedded=True, intent="perceptual", depth=8)
        if image.interpretation == "cmyk":
            return image.icc_transform("srgb", input_profile="cmyk", intent="perceptual", depth=8)
    except pyvips.Error:
        # A broken or unusable embedded profile: fall back to libvips' plain conversion,
        # which is what browsers do with a profile they cannot parse.
        pass
    return image


def trim(image: pyvips.Image) -> tuple[pyvips.Image, tuple[Problem, ...]]:
    """Remove the border of exactly the top-left pixel's colour (every band, alpha included)."""
    corner = image.getpoint(0, 0)
    # Exact: a mask of pixels that differ in any band, so find_trim's threshold and median
    # filter (meant for scanned photos) cannot eat one-pixel details.
    mask = (image != corner).bandor()
    left, top, width, height = mask.find_trim(threshold=0, background=[0], line_art=True)
    if width == 0 or height == 0:
        colour = "".join(f"{round(v):02X}" for v in corner[:3])
        return image, (
            Problem(
                "nothing-to-trim", f"the image is a single colour (#{colour}): nothing to trim"
            ),
        )
    return image.crop(left, top, width, height), ()


def resize_exact(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    if (image.width, image.height) == (width, height):
        return image
    alpha = image.hasalpha()
    if alpha:  # premultiply, or transparent pixels' colours bleed into the edges
        image = image.premultiply()
    out = image.resize(width / image.width, vscale=height / image.height, kernel="lanczos3")
    if alpha:
        out = out.unpremultiply()
    out = out.cast("uchar")
    if (out.width, out.height) != (width, height):
        # libvips rounds its own way; geometry is the contract, so never let a pixel slip.
        out = out.crop(0, 0, min(out.width, width), min(out.height, height))
        out = out.embed(0, 0, width, height, extend="copy")
    return out


def cut(image: pyvips.Image, geometry: Geometry) -> pyvips.Image:
    """The aspect cut (geometry.cut), on `image` as decoded: a JPEG shrunk on load is cut at
    the same place in proportion."""
    if geometry.cut is None:
        return image
    left, top, width, height = geometry.cut
    sx, sy = image.width / geometry.source_width, image.height / geometry.source_height
    w = max(1, min(image.width, round(width * sx)))
    h = max(1, min(image.height, round(height * sy)))
    if (w, h) == (image.width, image.height):
        return image
    if geometry.cut_auto:
        return image.smartcrop(w, h, interesting="attention")
    return image.crop(
        min(round(left * sx), image.width - w), min(round(top * sy), image.height - h), w, h
    )


def fixed_cut(image: pyvips.Image, geometry: Geometry) -> Geometry:
    """`geometry` with an attention-placed cut settled on `image` (full size): the frames of
    an animation are all cut where the first one's interesting part is."""
    if geometry.cut is None or not geometry.cut_auto:
        return geometry
    _, _, width, height = geometry.cut
    _, found = image.smartcrop(
        width, height, interesting="attention", attention_x=True, attention_y=True
    )
    left = min(max(found["attention_x"] - width // 2, 0), image.width - width)
    top = min(max(found["attention_y"] - height // 2, 0), image.height - height)
    return replace(geometry, cut=(left, top, width, height), cut_auto=False)


def shape(image: pyvips.Image, geometry: Geometry, recipe: Recipe) -> pyvips.Image:
    """Cut to the aspect, resize to geometry's scaled size, then crop or pad to its final size."""
    image = resize_exact(cut(image, geometry), geometry.scaled_width, geometry.scaled_height)
    size = (geometry.width, geometry.height)
    if size == (image.width, image.height):
        return image
    if recipe.mode == "crop":
        if recipe.gravity == "auto":
            return image.smartcrop(geometry.width, geometry.height, interesting="attention")
        return image.crop(geometry.left, geometry.top, geometry.width, geometry.height)
    background = rgb(recipe.bgcolor) + ([255] if image.hasalpha() else [])
    return image.embed(
        geometry.left,
        geometry.top,
        geometry.width,
        geometry.height,
        extend="background",
        background=background,
    )


def alpha_in_use(image: pyvips.Image) -> bool:
    """True when some pixel is not fully opaque (an all-opaque alpha band does not count)."""
    return image.hasalpha() and image.extract_band(image.bands - 1).min() < 255


def settle_alpha(image: pyvips.Image, keep_alpha: bool, bgcolor: str) -> pyvips.Image:
    """Flatten onto bgcolor when alpha cannot or need not be kept."""
    if not image.hasalpha() or keep_alpha:
        return image
    return image.flatten(background=rgb(bgcolor)).cast("uchar")


def few_colours(image: pyvips.Image, limit: int = 256, budget: int = 4_000_000) -> bool:
    """At most `limit` distinct colours (alpha included), counted on up to `budget` pixels.

    A nearest-neighbour subsample only keeps colours that exist, so big images are judged on a
    sample: a graphic stays a graphic, a photo shows hundreds of colours in its first rows.
    """
    step = 1
    while image.width * image.height // (step * step) > budget:
        step += 1
    if step > 1:
        image = image.subsample(step, step)
    if image.bands == 3:  # pad to 4 bytes a pixel so each pixel is one 32-bit integer
        image = image.bandjoin(0)
    pixels = memoryview(image.write_to_memory()).cast("I")
    seen: set[int] = set()
    chunk = 1 << 16
    for start in range(0, len(pixels), chunk):
        seen.update(pixels[start : start + chunk])
        if len(seen) > limit:
            return False
    return True
