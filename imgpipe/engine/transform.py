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


def to_srgb(image: pyvips.Image, *, wide: bool = False) -> pyvips.Image:
    """Autorotated 8-bit sRGB: 3 bands, or 4 with alpha, with no profile attached.

    With `wide`, a source whose profile holds colours outside sRGB (Display P3, Adobe RGB,
    ProPhoto...) becomes 8-bit Display P3 instead, tagged with libvips' compact (480-byte)
    P3 profile: the encoders embed it (`encode.keep_of`), so its colours are not clipped.
    Returns `image` itself when it already is plain sRGB, so callers can tell nothing was done.
    """
    if image.get_typeof("orientation") and image.get("orientation") != 1:
        image = image.autorot()
    image = _import_profile(image, wide)
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


# The built-in profile wide-gamut sources are converted to: it covers what phones and most
# wide-gamut screens show, and it is small enough to travel with every rendition.
WIDE_PROFILE = "p3"


def _import_profile(image: pyvips.Image, wide: bool) -> pyvips.Image:
    target = "srgb"
    try:
        if image.get_typeof("icc-profile-data"):
            # CMYK, wide-gamut and 16-bit sources through their own profile.
            target = WIDE_PROFILE if wide and wide_gamut(image) else "srgb"
            out = image.icc_transform(target, embedded=True, intent="perceptual", depth=8)
        elif image.interpretation == "cmyk":
            out = image.icc_transform("srgb", input_profile="cmyk", intent="perceptual", depth=8)
        else:
            return image
    except pyvips.Error:
        # A broken or unusable embedded profile: fall back to libvips' plain conversion,
        # which is what browsers do with a profile they cannot parse.
        return _untagged(image)
    return out if target == WIDE_PROFILE else _untagged(out)


def plain_srgb(image: pyvips.Image) -> pyvips.Image:
    """`image` (from `to_srgb`) as untagged sRGB, for what cannot carry a profile (GIF, CSS
    colours): a wide-gamut image's colours outside sRGB are clipped to it."""
    if not image.get_typeof("icc-profile-data"):
        return image
    return _untagged(image.icc_transform("srgb", embedded=True, intent="perceptual", depth=8))


def _untagged(image: pyvips.Image) -> pyvips.Image:
    if not image.get_typeof("icc-profile-data"):
        return image
    image = image.copy()
    image.remove("icc-profile-data")
    return image


# How far (in 8-bit P3 levels) a primary of the source's profile may move on a round trip
# through sRGB and still count as inside it: rounding in plain sRGB profiles moves it 1 or 2.
_CLIPPED = 8


def wide_gamut(image: pyvips.Image) -> bool:
    """Whether the RGB profile embedded in `image` reaches colours sRGB cannot show: its pure
    red, green and blue, in Display P3, change when they go through sRGB and back."""
    profile = image.get("icc-profile-data")
    if len(profile) < 20 or profile[16:20] != b"RGB ":  # CMYK, grey, Lab: not as RGB
        return False
    pixels = bytes((255, 0, 0, 0, 255, 0, 0, 0, 255))
    primaries = pyvips.Image.new_from_memory(pixels, 3, 1, 3, "uchar").copy(interpretation="srgb")
    primaries.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    wide = primaries.icc_transform(WIDE_PROFILE, embedded=True, intent="relative")
    back = wide.icc_transform("srgb", embedded=True, intent="relative").icc_transform(
        WIDE_PROFILE, embedded=True, intent="relative"
    )
    return bool((wide.cast("int") - back.cast("int")).abs().max() > _CLIPPED)


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
