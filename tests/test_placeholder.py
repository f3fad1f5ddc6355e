"""Placeholders: a dominant colour and a tiny blurred data-URI preview per source, computed from
the render's own decode, kept in the state and the manifest, usable from templates."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.engine import open_source  # noqa: E402
from imgpipe.engine.placeholder import LQIP_BUDGET, dominant_colour  # noqa: E402
from imgpipe.html import Images  # noqa: E402
from imgpipe.options import parse  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = sorted((REPO / "example-site/images").rglob("*.[jp][pn]g"))
COLOUR = re.compile(r"^#[0-9a-f]{6}$")


def check(placeholder) -> pyvips.Image:
    """The placeholder's preview, after checking its form and budget."""
    assert COLOUR.match(placeholder.color)
    assert placeholder.lqip.startswith("data:image/webp;base64,")
    assert len(placeholder.lqip) <= LQIP_BUDGET
    preview = pyvips.Image.webpload_buffer(base64.b64decode(placeholder.lqip.split(",", 1)[1]))
    assert 8 <= max(preview.width, preview.height) <= 32
    return preview


@pytest.mark.parametrize("path", EXAMPLE, ids=lambda p: p.name)
def test_every_example_site_source_has_a_placeholder_within_budget(path):
    source = open_source(path)
    assert source.render_all([]) == [] and source.info.placeholder is not None
    preview = check(source.info.placeholder)
    # Same shape as the image (within a preview pixel).
    assert abs(preview.width / preview.height - source.info.width / source.info.height) < 0.15


def test_the_dominant_colour_is_the_most_common_not_the_mean(synth):
    # 70% blue sky, 30% red: the mean would be a muddy purple.
    image = synth.block(100, 100, "1E50DC", (0, 70, 100, 30), "DC1E1E")
    assert dominant_colour(image) == "#1e50dc"
    clear = pyvips.Image.black(40, 40, bands=4).cast("uchar").copy(interpretation="srgb")
    assert dominant_colour(clear) == "#ffffff"  # nothing to show


def test_transparency_is_kept_in_the_preview(synth):
    rgba = (
        synth.solid(64, 32, "FF8800")
        .bandjoin(
            pyvips.Image.black(64, 32)
            .new_from_image([0])
            .insert(pyvips.Image.black(32, 32).new_from_image([255]), 16, 0)
        )
        .cast("uchar")
    )
    source = open_source(rgba.copy(interpretation="srgb").pngsave_buffer())
    source.render_all([parse("32,format=png")])
    preview = check(source.info.placeholder)
    assert preview.hasalpha() and preview.getpoint(0, preview.height // 2)[3] < 64
    assert source.info.placeholder.color == "#ff8800"


SITE = """
source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"

[[rules]]
include = ["*.jpg"]
widths = [160]
formats = ["webp", "jpeg"]
"""


def test_placeholders_are_in_the_manifest_cached_in_state_and_offered_to_templates(
    tmp_path, monkeypatch
):
    (tmp_path / "images").mkdir()
    photos = [p for p in EXAMPLE if p.suffix == ".jpg"][:2]
    for path in photos:
        (tmp_path / "images" / path.name).write_bytes(path.read_bytes())
    (tmp_path / "imgpipe.toml").write_text(SITE)
    config = load(tmp_path / "imgpipe.toml")
    assert build(config).ok
    manifest = tmp_path / "public/img/imgpipe-manifest.json"
    first = manifest.read_bytes()
    images = Images(manifest)
    name = photos[0].name
    entry = images.entry(name)["placeholder"]
    assert COLOUR.match(entry["color"]) and len(entry["lqip"]) <= LQIP_BUDGET

    # A rebuild that renders nothing (forced past the no-op fast path, outputs intact) gets
    # the placeholders from the state: nothing is decoded.
    from imgpipe.engine import source as source_module

    monkeypatch.setattr(source_module, "decode", lambda *a, **k: pytest.fail("decoded"))
    (tmp_path / "imgpipe.toml").write_text(SITE + "\n# touched\n")
    summary = build(load(tmp_path / "imgpipe.toml"))
    assert summary.ok and summary.built == 0 and manifest.read_bytes() == first

    html = str(images.picture(name, alt="x", placeholder=True, style="border:0"))
    style = f"background:{entry['color']} url({entry['lqip']}) center/cover no-repeat;border:0"
    assert f'style="{style}"' in html and "placeholder" not in html.replace(entry["lqip"], "")
    assert "style=" not in str(images.picture(name, alt="x"))


def decoded_hashes(placeholder, width: int, height: int):
    """(ThumbHash RGBA, BlurHash RGB) as numpy arrays, decoded by the reference ports."""
    import blurhash
    import numpy as np
    from thumbhash.decode import thumbhash_to_rgba

    w, h, rgba = thumbhash_to_rgba(base64.b64decode(placeholder.thumbhash))
    thumb = np.array(rgba, dtype=float).reshape(h, w, 4)
    blur = np.array(blurhash.decode(placeholder.blurhash, width, height), dtype=float)
    return thumb, blur


def test_thumbhash_and_blurhash_decode_to_the_image_colours(synth):
    # Left half orange, right half blue: both hashes must say so, on the right sides.
    image = synth.block(96, 48, "2050D0", (0, 0, 48, 48), "E07020")
    source = open_source(image.pngsave_buffer())
    source.render_all([])
    placeholder = source.info.placeholder
    assert 20 <= len(placeholder.thumbhash) <= 40 and 15 <= len(placeholder.blurhash) <= 40
    thumb, blur = decoded_hashes(placeholder, 32, 16)
    assert thumb.shape[1] > thumb.shape[0]  # landscape, as the image
    for pixels in (thumb, blur):
        h, w = pixels.shape[:2]
        left = pixels[h // 2, w // 8, :3]
        right = pixels[h // 2, w - 1 - w // 8, :3]
        assert abs(left - [0xE0, 0x70, 0x20]).max() <= 45, left
        assert abs(right - [0x20, 0x50, 0xD0]).max() <= 45, right


def test_thumbhash_keeps_transparency(synth):
    opaque = synth.solid(32, 64, "30A040").bandjoin(255)
    clear = synth.solid(32, 64, "30A040").bandjoin(0)
    image = opaque.insert(clear, 0, 32).copy(interpretation="srgb")  # bottom half transparent
    source = open_source(image.pngsave_buffer())
    source.render_all([])
    thumb, _ = decoded_hashes(source.info.placeholder, 16, 32)
    assert thumb.shape[0] > thumb.shape[1]  # portrait
    assert thumb[2, thumb.shape[1] // 2, 3] > 200 and thumb[-3, thumb.shape[1] // 2, 3] < 60
    assert abs(thumb[2, thumb.shape[1] // 2, :3] - [0x30, 0xA0, 0x40]).max() <= 45


def test_templates_choose_the_placeholder(tmp_path):
    (tmp_path / "images").mkdir()
    photo = next(p for p in EXAMPLE if p.suffix == ".jpg")
    (tmp_path / "images" / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "imgpipe.toml").write_text(SITE)
    assert build(load(tmp_path / "imgpipe.toml")).ok
    images = Images(tmp_path / "public/img/imgpipe-manifest.json")
    entry = images.entry(photo.name)["placeholder"]
    for kind in ("thumbhash", "blurhash"):
        html = str(images.picture(photo.name, alt="x", placeholder=kind))
        assert f'data-{kind}="{entry[kind]}"' in html
        assert f'style="background:{entry["color"]}"' in html and entry["lqip"] not in html
    html = str(images.picture(photo.name, alt="x", placeholder="color"))
    assert f'style="background:{entry["color"]}"' in html and "data-" not in html


def test_our_thumbhash_encoder_writes_what_the_reference_port_writes():
    import numpy as np
    from thumbhash.encode import rgba_to_thumbhash

    from imgpipe.engine.hashes import thumbhash

    rng = np.random.default_rng(7)
    for (h, w), opaque in (((24, 32), True), ((32, 20), False), ((7, 30), False)):
        rgba = (rng.integers(0, 256, (h, w, 4)).cumsum(axis=1) % 256).astype(np.uint8)
        if opaque:
            rgba[..., 3] = 255
        reference = rgba_to_thumbhash(w, h, rgba.reshape(-1).tolist())
        assert thumbhash(rgba) == base64.b64encode(reference).decode("ascii")
