"""Geometry from the shared conformance table (pure part; the engine tests render them too)."""

import tomllib
from pathlib import Path

import pytest

from imgpipe.geometry import compute
from imgpipe.options import parse

CASES = tomllib.loads((Path(__file__).parent / "data/conformance/geometry.toml").read_text())[
    "case"
]
# Trim changes the source size first; only the engine can know by how much.
PURE = [c for c in CASES if "trim" not in c["options"]]


@pytest.mark.parametrize(
    "case", PURE, ids=[f"{c['options']}@{c['input']['width']}x{c['input']['height']}" for c in PURE]
)
def test_conformance(case):
    recipe = parse(case["options"])
    g = compute(recipe, case["input"]["width"], case["input"]["height"])
    assert (g.width, g.height) == (case["expect"]["width"], case["expect"]["height"])
    if "origin" in case:
        assert [g.left, g.top] == case["origin"]
    assert bool(recipe.warnings) == case.get("warning", False)


@pytest.mark.parametrize(
    "options,size,expected",
    [
        ("50x50,pad", (200, 100), (50, 25, 50, 50, 0, 12)),
        ("300x300,crop", (200, 100), (600, 300, 300, 300, 150, 0)),
        ("200x200,crop=bottom", (200, 400), (200, 400, 200, 200, 0, 200)),
        ("200x200,crop=right", (400, 200), (400, 200, 200, 200, 200, 0)),
        ("200x200,crop=auto", (400, 200), (400, 200, 200, 200, 100, 0)),
        ("1x1", (10000, 1), (1, 1, 1, 1, 0, 0)),
    ],
)
def test_placement(options, size, expected):
    g = compute(parse(options), *size)
    assert (g.scaled_width, g.scaled_height, g.width, g.height, g.left, g.top) == expected


def test_full_and_no_resize_keep_pixels():
    assert not compute(parse("full"), 640, 480).changes_pixels
    assert not compute(parse("800"), 640, 480).changes_pixels
    assert compute(parse("320"), 640, 480).changes_pixels
    assert compute(parse("640x400,crop"), 640, 480).changes_pixels


def test_bad_source_size():
    with pytest.raises(ValueError):
        compute(parse("800"), 0, 10)
