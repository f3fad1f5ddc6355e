"""A focal point (`[images."path"] focus`) through real builds: every crop kind keeps a marker
near the edge that a centred crop, or attention drawn to a brighter spot, would cut away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

from art_support import FOCUS, draw_photo, marker_pixels  # noqa: E402

from imgpipe import build as b  # noqa: E402
from imgpipe.config import from_dict  # noqa: E402

RULES = [
    {
        "include": ["*.png"],
        "renditions": {
            "crop": "200x200,crop,format=png",
            "auto": "200x200,crop=auto,format=png",
            "aspect": "200,aspect=1:1,format=png",
            "aspect-crop": "120x90,crop,aspect=1:1,format=png",
        },
    },
    {
        "include": ["*.png"],
        "widths": [400],
        "formats": ["png"],
        "art": [{"media": "(max-width: 600px)", "aspect": "3:4", "widths": [150]}],
    },
]


def _build(root: Path, images: dict) -> dict[str, Path]:
    (root / "images").mkdir(parents=True)
    draw_photo(root / "images/photo.png")
    raw = {
        "source": "images",
        "output": "out",
        "cache_dir": ".cache",
        "jobs": 1,
        "rules": RULES,
        "images": images,
    }
    summary = b.build(from_dict(raw, root))
    assert summary.ok, summary.failures
    manifest = json.loads((root / "out/imgpipe-manifest.json").read_text())
    renditions = manifest["sources"]["photo.png"]["renditions"]
    return {label: root / "out" / r["path"] for label, r in renditions.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[dict[str, Path], dict[str, Path]]:
    root = tmp_path_factory.mktemp("focus")
    return (
        _build(root / "focused", {"photo.png": {"focus": FOCUS}}),
        _build(root / "plain", {}),
    )


CROP_KINDS = ["crop", "auto", "aspect", "aspect-crop", "art1-150-png"]


@pytest.mark.parametrize("label", CROP_KINDS)
def test_the_focal_point_survives_every_crop_kind(built, label):
    focused, _ = built
    assert marker_pixels(focused[label]) > 60, label  # the marker, scaled (>= 8x8 px)


@pytest.mark.parametrize("label", CROP_KINDS)
def test_without_it_the_marker_is_cut_away(built, label):
    """The same crops without the focal point (centre, or attention on the bright patch):
    what makes the test above mean something."""
    _, plain = built
    assert marker_pixels(plain[label]) == 0, label


def test_uncropped_renditions_are_the_same_file(built):
    """`400-png` does not crop: the focal point changes neither its bytes nor its name."""
    focused, plain = built
    assert focused["400-png"].name == plain["400-png"].name
    assert focused["400-png"].read_bytes() == plain["400-png"].read_bytes()
    assert focused["crop"].name != plain["crop"].name  # a crop's cache key has the point


def test_sizes_are_those_of_the_recipes(built):
    focused, _ = built
    sizes = {
        label: (lambda i: (i.width, i.height))(pyvips.Image.new_from_file(str(path)))
        for label, path in focused.items()
    }
    assert sizes == {
        "crop": (200, 200),
        "auto": (200, 200),
        "aspect": (200, 200),
        "aspect-crop": (120, 90),
        "400-png": (400, 200),
        "art1-150-png": (150, 200),
    }


@pytest.mark.parametrize("options", ["100,aspect=1:1", "50x50,crop", "50x50,crop=auto"])
def test_the_focal_point_survives_shrink_on_load(tmp_path, options):
    """A JPEG decoded at 1/2 or 1/4 of its size is cut at the same place in proportion."""
    import imgpipe

    draw_photo(tmp_path / "photo.png")
    jpeg = pyvips.Image.new_from_file(str(tmp_path / "photo.png")).jpegsave_buffer(Q=95)
    recipe = f"{options},format=png"
    for focus, expect_marker in ((f",focus={FOCUS}", True), ("", False)):
        out = tmp_path / "out.png"
        out.write_bytes(imgpipe.optimize(jpeg, recipe + focus).data)
        assert (marker_pixels(out) > 10) is expect_marker, (options, focus)
