"""Every shared conformance case, run through the real engine on real encoded images.

geometry.toml: the output is decoded and its size (and, for `origin` cases, its top-left
pixel) compared. options.toml: errors surface as OptionError (exit 2) naming the token;
warnings come back on the rendition.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import imgpipe
from imgpipe.errors import OptionError

DATA = Path(__file__).parent / "data" / "conformance"
GEOMETRY = tomllib.loads((DATA / "geometry.toml").read_text())["case"]
OPTIONS = tomllib.loads((DATA / "options.toml").read_text())


def _source(synth, spec: dict) -> bytes:
    width, height = spec["width"], spec["height"]
    pattern = spec.get("pattern")
    if pattern == "block":
        return synth.block(
            width, height, spec["background"], spec["block"], spec["color"]
        ).pngsave_buffer()
    if pattern == "solid":
        return synth.solid(width, height, spec["background"]).pngsave_buffer()
    if pattern == "coords":  # lossless source: the origin pixel must survive exactly
        return synth.coords(width, height).pngsave_buffer()
    # Plain size cases use a JPEG, so shrink-on-load is part of what is checked.
    return synth.coords(width, height).jpegsave_buffer(Q=90)


@pytest.mark.parametrize(
    "case", GEOMETRY, ids=lambda c: f"{c['options']}@{c['input']['width']}x{c['input']['height']}"
)
def test_geometry_case(case, synth):
    rendition = imgpipe.optimize(_source(synth, case["input"]), case["options"])
    out = synth.decode(rendition.data)

    expect = (case["expect"]["width"], case["expect"]["height"])
    assert (out.width, out.height) == expect
    assert (rendition.width, rendition.height) == expect
    assert bool(rendition.warnings) == case.get("warning", False), rendition.warnings
    if "origin" in case:
        x, y = case["origin"]
        assert out.getpoint(0, 0) == [x % 256, y % 256, (x // 256) * 16 + y // 256]


@pytest.mark.parametrize("case", OPTIONS["error"], ids=lambda c: repr(c["options"]))
def test_options_error_case(case, synth):
    source = synth.coords(64, 48).jpegsave_buffer()
    with pytest.raises(OptionError) as caught:
        imgpipe.optimize(source, case["options"])
    assert caught.value.exit_code == 2
    assert case.get("mentions", "") in str(caught.value)


@pytest.mark.parametrize("case", OPTIONS["warning"], ids=lambda c: repr(c["options"]))
def test_options_warning_case(case, synth):
    # Wider than 800, so `800,quality=lossless` really resizes (the case's condition).
    source = synth.coords(1000, 500).jpegsave_buffer()
    rendition = imgpipe.optimize(source, case["options"])
    assert rendition.warnings, case["why"]
    assert synth.decode(rendition.data).width == rendition.width
