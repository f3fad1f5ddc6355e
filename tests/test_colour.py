"""Colour that survives: wide-gamut sources keep their gamut in every output that can carry a
profile; sRGB stays untagged sRGB; what cannot carry one (GIF, CSS colours) gets plain sRGB.

Renditions are decoded *with colour management* (through the profile they carry, or as sRGB
when they carry none, as browsers do) and compared with the source in CIE ΔE 2000.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgpipe.engine import open_source
from imgpipe.options import parse

ADOBE_RGB = Path("/usr/share/color/icc/compatibleWithAdobeRGB1998.icc")  # icc-profiles-free
# Colours (8-bit, in the source's own space) most of which lie outside sRGB in P3 and Adobe
# RGB: pure primaries, an orange, a cyan, a green-yellow, and two that sRGB holds.
PATCHES = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 128, 0),
    (0, 220, 220),
    (160, 255, 40),
    (128, 128, 128),
    (200, 150, 120),
]
SIDE = 48
OUTPUTS = ("jpeg", "png", "webp", "avif")


def profile(synth, name: str) -> bytes:
    if name == "adobe":
        return ADOBE_RGB.read_bytes()
    return synth.solid(1, 1).icc_transform(name, input_profile="srgb").get("icc-profile-data")


def patches(synth, icc: bytes | None):
    """A row of solid patches in the given values, tagged with `icc` (or untagged)."""
    row = synth.vips.Image.arrayjoin(
        [synth.solid(SIDE, SIDE, "".join(f"{v:02x}" for v in rgb)) for rgb in PATCHES],
        across=len(PATCHES),
    ).copy()
    if icc is not None:
        row.set_type(synth.vips.GValue.blob_type, "icc-profile-data", icc)
    return row


def lab(image):
    """CIE Lab as a browser would see `image`: through its profile, or as sRGB without one."""
    image = image.extract_band(0, n=3)  # a GIF decodes with an (opaque) alpha
    if image.get_typeof("icc-profile-data"):
        return image.icc_import(embedded=True, intent="relative")
    return image.icc_import(input_profile="srgb", intent="relative")


def patch_errors(source, out) -> list[float]:
    """Mean ΔE 2000 over the middle of each patch."""
    difference = lab(source).dE00(lab(out))
    margin = SIDE // 4
    return [
        difference.crop(i * SIDE + margin, margin, SIDE - 2 * margin, SIDE - 2 * margin).avg()
        for i in range(len(PATCHES))
    ]


@pytest.mark.parametrize("space", ["p3", "adobe"])
@pytest.mark.parametrize("fmt", OUTPUTS)
def test_wide_gamut_source_keeps_its_colours(space, fmt, synth):
    source = patches(synth, profile(synth, space))
    rendition = open_source(source.pngsave_buffer(keep="icc")).render(parse(f"full,format={fmt}"))
    out = synth.decode(rendition.data)
    carried = out.get("icc-profile-data") if out.get_typeof("icc-profile-data") else b""
    assert 0 < len(carried) <= 1000, "a compact profile travels with the rendition"
    errors = patch_errors(source, out)
    # P3 holds every P3 colour. Adobe RGB's red, green and cyan reach beyond P3 and are clipped
    # to it, still far closer than in sRGB (ΔE 7.8, 9.6 and 8.4 there).
    limits = [2.0] * len(PATCHES)
    if space == "adobe":
        limits[:5] = [3.5, 6.0, 2.0, 3.0, 5.0]
    assert all(e <= limit for e, limit in zip(errors, limits, strict=True)), errors


def test_clipping_to_srgb_is_what_the_test_sees(synth):
    """The measure above can fail: the same P3 patches clipped to sRGB are far off."""
    source = patches(synth, profile(synth, "p3"))
    clipped = source.icc_transform("srgb", embedded=True, intent="relative")
    clipped.remove("icc-profile-data")
    errors = patch_errors(source, clipped)
    assert max(errors[:2]) > 5.0 and max(errors[6:]) < 1.0


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_srgb_sources_stay_untagged(fmt, synth):
    for icc in (None, profile(synth, "srgb")):
        source = patches(synth, icc)
        out = synth.decode(
            open_source(source.pngsave_buffer(keep="icc")).render(parse(f"full,format={fmt}")).data
        )
        assert not out.get_typeof("icc-profile-data"), fmt
        assert max(patch_errors(source, out)) <= 3.0


def test_gif_and_placeholder_of_a_p3_source_are_plain_srgb(synth):
    source = patches(synth, profile(synth, "p3"))
    handle = open_source(source.pngsave_buffer(keep="icc"))
    out = synth.decode(handle.render(parse("full,format=gif")).data)
    assert not out.get_typeof("icc-profile-data")
    clipped = source.icc_transform("srgb", embedded=True, intent="relative")
    clipped.remove("icc-profile-data")
    assert max(patch_errors(clipped, out)) <= 1.5  # the closest sRGB colours, not P3 as sRGB
    # The placeholder's colour is CSS (sRGB): a P3 patch shows as its sRGB equivalent.
    solid = synth.solid(64, 64, "b83230").copy()  # P3 values of sRGB #c81e28
    solid.set_type(synth.vips.GValue.blob_type, "icc-profile-data", profile(synth, "p3"))
    handle = open_source(solid.pngsave_buffer(keep="icc"))
    handle.render_all([])
    colour = handle.info.placeholder.color
    assert all(
        abs(int(colour[i : i + 2], 16) - v) <= 4
        for i, v in zip((1, 3, 5), (200, 30, 40), strict=True)
    )


def test_cmyk_and_broken_profiles_become_untagged_srgb(synth):
    colour = synth.solid(64, 64, "996655")
    cmyk = colour.icc_transform("cmyk", input_profile="srgb").jpegsave_buffer(keep="icc")
    broken = colour.copy()
    broken.set_type(synth.vips.GValue.blob_type, "icc-profile-data", b"not a profile" * 10)
    for name, data in (("cmyk", cmyk), ("broken", broken.pngsave_buffer(keep="icc"))):
        out = synth.decode(open_source(data).render(parse("full,format=webp")).data)
        assert not out.get_typeof("icc-profile-data"), name
        assert all(
            abs(a - b) <= 12 for a, b in zip(out.getpoint(10, 10), (0x99, 0x66, 0x55), strict=True)
        ), (
            name,
            out.getpoint(10, 10),
        )
