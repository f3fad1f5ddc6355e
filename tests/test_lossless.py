"""Lossless outputs decode to exactly the pixels they were made from (alpha and all)."""

from __future__ import annotations

import pytest

from imgpipe.engine import open_source
from imgpipe.engine.lossless import optimise_jpeg, optimise_png
from imgpipe.options import parse


def render(data: bytes, options: str):
    return open_source(data).render(parse(options))


@pytest.fixture
def rgba(synth):
    """Colour under fully transparent pixels included: lossless keeps that too."""
    image = synth.coords(240, 160)
    noise = synth.vips.Image.gaussnoise(240, 160, sigma=20)
    image = (image + noise).cast("uchar")
    alpha = (image[0] > 100).ifthenelse(255, 0) + (image[1] > 150).ifthenelse(-128, 0)
    return image.bandjoin(alpha.cast("uchar")).copy(interpretation="srgb")


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_lossless_outputs_decode_to_identical_pixels(fmt, rgba, synth):
    for image in (rgba, rgba.extract_band(0, n=3)):
        r = render(image.pngsave_buffer(), f"full,format={fmt},quality=lossless")
        out = synth.decode(r.data)
        assert (out.bands, r.score) == (image.bands, 100.0)
        assert (out - image).abs().max() == 0, fmt


def test_png_goes_through_oxipng(rgba, synth):
    plain = rgba.pngsave_buffer(compression=9)
    r = render(plain, "full,format=png,quality=lossless")
    assert r.bytes < len(plain)
    assert (synth.decode(r.data) - rgba).abs().max() == 0


def test_optimise_png_never_grows_a_file(synth):
    tiny = synth.solid(4, 4).pngsave_buffer()
    assert len(optimise_png(tiny)) <= len(tiny)
    assert optimise_png(b"not a png") == b"not a png"


def test_optimise_jpeg_keeps_every_pixel_and_drops_metadata(synth):
    image = (
        (synth.coords(320, 200) + synth.vips.Image.gaussnoise(320, 200, sigma=10))
        .cast("uchar")
        .copy(interpretation="srgb")
    )
    image.set_type(synth.vips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    source = image.jpegsave_buffer(Q=85, keep="exif", optimize_coding=False)
    assert synth.decode(source).get_typeof("exif-data")
    out = optimise_jpeg(source)
    assert len(out) < len(source)
    assert (synth.decode(out) - synth.decode(source)).abs().max() == 0
    assert not synth.decode(out).get_typeof("exif-data")


def test_quality_lossless_jpeg_keeps_a_jpeg_source_exactly(synth):
    source = synth.coords(300, 200).jpegsave_buffer(Q=90)
    r = render(source, "full,format=jpeg,quality=lossless")
    assert (r.format, r.quality, r.warnings) == ("jpeg", "lossless", ())
    assert (synth.decode(r.data) - synth.decode(source)).abs().max() == 0
    # Resized, nothing can be kept: the usual warning and quality=high.
    resized = render(source, "200,format=jpeg,quality=lossless")
    assert [w.code for w in resized.warnings] == ["lossless-resized"]
