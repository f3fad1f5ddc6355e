"""`aspect=W:H` and `focus=FXxFY` from their conformance table (tests/data/conformance/aspect.toml):
pure geometry, canonical forms and exact messages, then every case through the real engine."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import imgpipe
from imgpipe.errors import OptionError
from imgpipe.geometry import compute
from imgpipe.options import parse

TABLE = tomllib.loads((Path(__file__).parent / "data/conformance/aspect.toml").read_text())


def _id(case: dict) -> str:
    size = case.get("input")
    return f"{case['options']}@{size['width']}x{size['height']}" if size else repr(case["options"])


@pytest.mark.parametrize("case", TABLE["case"], ids=_id)
def test_geometry(case):
    g = compute(parse(case["options"]), case["input"]["width"], case["input"]["height"])
    assert (g.width, g.height) == (case["expect"]["width"], case["expect"]["height"])
    if "origin" in case:
        left, top = g.cut[:2] if g.cut else (0, 0)
        assert [left + g.left, top + g.top] == case["origin"]


@pytest.mark.parametrize("case", TABLE["case"], ids=_id)
def test_engine(case, synth):
    spec = case["input"]
    image = synth.coords(spec["width"], spec["height"])
    if "origin" in case:  # lossless in and out: the pixel at the origin survives exactly
        source, options = image.pngsave_buffer(), case["options"] + ",format=png,quality=lossless"
    else:  # a JPEG, so shrink-on-load is part of what is checked
        source, options = image.jpegsave_buffer(Q=90), case["options"]
    rendition = imgpipe.optimize(source, options)
    out = synth.decode(rendition.data)
    expect = (case["expect"]["width"], case["expect"]["height"])
    assert (out.width, out.height) == (rendition.width, rendition.height) == expect
    if "origin" in case:
        x, y = case["origin"]
        assert out.getpoint(0, 0) == [x % 256, y % 256, (x // 256) * 16 + y // 256]


@pytest.mark.parametrize("case", TABLE["canonical"], ids=_id)
def test_canonical(case):
    recipe = parse(case["options"])
    assert recipe.canonical() == case["canonical"]
    assert [w.code for w in recipe.warnings] == case.get("codes", [])
    assert parse(case["canonical"]) == recipe  # a fixed point: same meaning, same string
    assert parse(case["canonical"]).canonical() == case["canonical"]


@pytest.mark.parametrize("case", TABLE["error"], ids=_id)
def test_error(case, synth):
    with pytest.raises(OptionError) as caught:
        parse(case["options"])
    problem = caught.value.problems[0]
    assert problem.code == case["code"]
    if "message" in case:
        assert problem.message == case["message"]
    assert case.get("mentions", "") in str(caught.value)
    with pytest.raises(OptionError) as caught:  # the engine refuses it the same way
        imgpipe.optimize(synth.coords(64, 48).jpegsave_buffer(), case["options"])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("case", TABLE["warning"], ids=_id)
def test_warning(case, synth):
    rendition = imgpipe.optimize(synth.coords(1000, 500).jpegsave_buffer(), case["options"])
    assert rendition.warnings, case["why"]


def test_attention_places_a_cut_without_a_point(synth):
    """No focal point and no crop gravity: libvips attention finds the one busy corner."""
    image = synth.block(600, 200, "808080", (520, 60, 60, 60), "FF0000")
    rendition = imgpipe.optimize(image.pngsave_buffer(), "aspect=1:1,format=png")
    out = synth.decode(rendition.data)
    assert (out.width, out.height) == (200, 200)
    assert out.getpoint(out.width - 30, 90)[:3] == [255, 0, 0]


def test_cache_key_inputs():
    """The ratio and the point change the bytes, so they are in the byte form (cache key)."""
    forms = {parse(t).byte_form() for t in ("480", "480,aspect=1:1", "480,aspect=4:3")}
    assert len(forms) == 3
    assert (
        parse("480,aspect=1:1,focus=0.2x0.2").byte_form()
        != parse("480,aspect=1:1,focus=0.8x0.2").byte_form()
    )
