"""The engine on real images: loading, colour, rotation, alpha, formats, encoders, one decode."""

from __future__ import annotations

import pytest

from imgpipe.engine import ENGINE_VERSION, Limits, open_source, versions
from imgpipe.engine import source as source_module
from imgpipe.engine.quality import estimate_jpeg_quality
from imgpipe.errors import ImageError
from imgpipe.options import parse


def render(data: bytes, options: str):
    return open_source(data).render(parse(options))


def close(a: list[float], b: list[float], tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --- loading every allowed family ---------------------------------------------------------

SAVERS = {
    "jpeg": lambda im: im.jpegsave_buffer(),
    "png": lambda im: im.pngsave_buffer(),
    "webp": lambda im: im.webpsave_buffer(),
    "gif": lambda im: im.gifsave_buffer(),
    "tiff": lambda im: im.tiffsave_buffer(),
    "heif": lambda im: im.heifsave_buffer(compression="av1", effort=0),
}


@pytest.mark.parametrize("family", SAVERS)
def test_each_allowed_family_loads_and_renders(family, synth):
    data = SAVERS[family](synth.coords(300, 200))
    source = open_source(data)
    assert (source.info.format, source.info.width, source.info.height) == (family, 300, 200)
    out = synth.decode(source.render(parse("150,format=webp")).data)
    assert (out.width, out.height) == (150, 100)


# --- one decode feeds every rendition ---------------------------------------------------


def test_render_all_decodes_once_per_shrink_on_load_factor(synth, monkeypatch):
    calls = []

    def counting(real):
        def load(kind, data, name_or_shrink=None, shrink=1, **options):
            calls.append(shrink if isinstance(name_or_shrink, str) else name_or_shrink or 1)
            return (
                real(kind, data, name_or_shrink, shrink, **options)
                if isinstance(name_or_shrink, str)
                else real(kind, data, name_or_shrink or 1, **options)
            )

        return load

    monkeypatch.setattr(source_module, "decode", counting(source_module.decode))
    monkeypatch.setattr(source_module, "stream_pixels", counting(source_module.stream_pixels))
    source = open_source(synth.coords(2000, 1000).jpegsave_buffer())
    # (Fixed qualities: a preset would also load the quality probe at its own size.)
    results = source.render_all(
        [
            parse("100,quality=80"),
            parse("200,format=webp,quality=80"),
            parse("50x50,crop,quality=80"),
        ]
    )
    # Each loads as libvips thumbnail would for it alone: 200 px wide is a 10x reduction
    # (shrink-on-load 4, then resize); 100 px and the 50 px crop (20x) share shrink 8, and so
    # does the placeholder (a 32 px sample of the 1000 px side).
    assert sorted(calls) == [4, 8]
    assert [(r.width, r.height) for r in results] == [(100, 50), (200, 100), (50, 50)]

    calls.clear()
    source.render_all([parse("100,quality=80"), parse("trim,100,quality=80")])
    assert sorted(calls) == [1, 8]  # trim needs every source pixel


def test_a_progressive_jpeg_is_decoded_once_at_full_size_for_all_renditions(synth, monkeypatch):
    calls = []
    real = source_module.decode
    monkeypatch.setattr(
        source_module,
        "decode",
        lambda kind, data, name, shrink=1: calls.append(shrink) or real(kind, data, name, shrink),
    )
    source = open_source(synth.coords(2000, 1000).jpegsave_buffer(interlace=True))
    source.render_all([parse("100"), parse("200,format=webp"), parse("1000")])
    assert calls == [1]  # shrinking saves little on a progressive JPEG; a second decode costs


def test_one_failing_recipe_does_not_stop_the_others(synth):
    source = open_source(synth.coords(200, 100).pngsave_buffer())
    video, image = source.render_all([parse("100,format=webm"), parse("100,format=png")])
    assert isinstance(video, ImageError) and video.code == "video-needs-animation"
    assert "this source is a still PNG image" in str(video)
    assert image.format == "png" and image.width == 100


# --- quality=lossless keeps every pixel --------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_lossless_without_resize_keeps_every_pixel(fmt, synth):
    original = synth.coords(300, 200)
    with_alpha = original.bandjoin((original[0] > 128).ifthenelse(255, 0)).cast("uchar")
    for image in (original, with_alpha):
        rendition = render(image.pngsave_buffer(), f"full,format={fmt},quality=lossless")
        assert rendition.quality == "lossless" and not rendition.warnings
        out = synth.decode(rendition.data)
        assert out.bands == image.bands
        assert (out - image).abs().max() == 0


def test_lossless_crop_keeps_the_cropped_pixels(synth):
    image = synth.coords(600, 300)
    out = synth.decode(
        render(image.pngsave_buffer(), "300x300,crop=left,format=webp,quality=lossless").data
    )
    assert (out - image.crop(0, 0, 300, 300)).abs().max() == 0


def test_lossless_with_resize_warns_and_uses_high(synth):
    rendition = render(synth.coords(1000, 500).pngsave_buffer(), "800,format=webp,quality=lossless")
    assert [w.code for w in rendition.warnings] == ["lossless-resized"]
    assert rendition.quality == "high" and rendition.score >= 90  # searched to high's target


def test_lossless_jpeg_is_impossible_so_it_warns_and_uses_high(synth):
    rendition = render(synth.coords(300, 200).pngsave_buffer(), "full,format=jpeg,quality=lossless")
    assert [w.code for w in rendition.warnings] == ["lossless-jpeg"]
    assert rendition.quality == "high"


# --- format=auto --------------------------------------------------------------------------


def test_auto_format_photo_is_jpeg_graphic_is_png(synth):
    assert render(synth.coords(300, 300).jpegsave_buffer(), "200").format == "jpeg"
    logo = synth.block(300, 300, "FFFFFF", [50, 50, 100, 100], "CC0000")
    assert render(logo.jpegsave_buffer(Q=100), "200").format in ("png", "jpeg")
    assert render(logo.pngsave_buffer(), "200").format == "png"


def test_auto_format_keeps_a_lossless_request_lossless(synth):
    # A JPEG source recoded losslessly is the smallest exact candidate; a PNG source stays PNG.
    photo = synth.coords(300, 300).jpegsave_buffer()
    kept = render(photo, "full,quality=lossless")
    assert (kept.format, kept.quality, kept.warnings) == ("jpeg", "lossless", ())
    assert (synth.decode(kept.data) - synth.decode(photo)).abs().max() == 0
    graphic = render(synth.coords(300, 300).pngsave_buffer(), "full,quality=lossless")
    assert (graphic.format, graphic.quality) == ("png", "lossless")
    resized = render(photo, "200,quality=lossless")
    assert (resized.format, resized.quality) == ("jpeg", "high")
    assert [w.code for w in resized.warnings] == ["lossless-resized"]


def test_auto_format_uses_png_only_when_alpha_is_in_use(synth):
    photo = synth.coords(300, 300)
    opaque = photo.bandjoin(255).cast("uchar")
    holed = photo.bandjoin((photo[0] < 20).ifthenelse(0, 255)).cast("uchar")
    assert render(opaque.pngsave_buffer(), "full").format == "jpeg"
    out = render(holed.pngsave_buffer(), "full")
    assert out.format == "png" and synth.decode(out.data).bands == 4


def test_opaque_alpha_is_dropped_even_where_the_format_has_alpha(synth):
    opaque = synth.coords(100, 100).bandjoin(255).cast("uchar")
    assert synth.decode(render(opaque.pngsave_buffer(), "full,format=png").data).bands == 3


# --- alpha, padding, cropping -----------------------------------------------------------


def test_alpha_is_flattened_on_bgcolor_for_jpeg(synth):
    red = synth.solid(100, 100, "0000FF").bandjoin(0).cast("uchar")  # fully transparent blue
    out = synth.decode(render(red.pngsave_buffer(), "full,format=jpeg,bgcolor=F00").data)
    assert out.bands == 3 and close(out.getpoint(50, 50), [255, 0, 0], 3)


def test_pad_fills_with_bgcolor(synth):
    blue = synth.solid(200, 100, "0000FF")
    out = synth.decode(render(blue.pngsave_buffer(), "100x100,pad,bgcolor=00FF00,format=png").data)
    assert (out.width, out.height) == (100, 100)
    assert out.getpoint(50, 5) == [0, 255, 0]  # the band above the 100x50 picture
    assert out.getpoint(50, 50) == [0, 0, 255]


def test_crop_auto_keeps_the_interesting_part(synth):
    plain = synth.solid(600, 200, "808080")
    busy = synth.coords(200, 200).cast("uchar") * 7 % 256
    image = plain.insert(busy.cast("uchar"), 400, 0)  # all the detail is on the right
    out = synth.decode(render(image.pngsave_buffer(), "200x200,crop=auto,format=png").data)
    centre = synth.decode(render(image.pngsave_buffer(), "200x200,crop,format=png").data)
    assert out.deviate() > 40 and centre.deviate() < 1


# --- rotation, colour, metadata ----------------------------------------------------------


def test_exif_orientation_is_applied_and_removed(synth):
    stored = synth.solid(300, 200, "000000").insert(synth.solid(20, 20, "FF0000"), 0, 0).copy()
    stored.set_type(synth.vips.GValue.gint_type, "orientation", 6)  # display = 90° clockwise
    source = open_source(stored.jpegsave_buffer(Q=95, keep="exif"))
    assert (source.info.width, source.info.height) == (200, 300)
    out = synth.decode(source.render(parse("full,format=png")).data)
    assert (out.width, out.height) == (200, 300)
    assert close(out.getpoint(190, 10), [255, 0, 0], 40)  # top-left went to the top-right
    assert not out.get_typeof("orientation") or out.get("orientation") == 1


def test_cmyk_16bit_grey_and_palette_sources_become_srgb(synth):
    colour = synth.solid(64, 64, "996655")  # inside the CMYK gamut
    sources = {
        "cmyk": colour.colourspace("cmyk").jpegsave_buffer(),
        "16-bit": (colour.cast("ushort") * 257).copy(interpretation="rgb16").pngsave_buffer(),
        "palette": colour.pngsave_buffer(palette=True),
    }
    for name, data in sources.items():
        out = synth.decode(render(data, "full,format=png").data)
        assert (out.bands, out.format, out.interpretation) == (3, "uchar", "srgb"), name
        assert close(out.getpoint(10, 10), [0x99, 0x66, 0x55], 16), (name, out.getpoint(10, 10))
    grey = synth.solid(64, 64, "777777").colourspace("b-w").pngsave_buffer()
    out = synth.decode(render(grey, "full,format=jpeg").data)
    assert close(out.getpoint(5, 5)[:1], [0x77], 3)


def test_metadata_is_stripped(synth):
    image = synth.coords(200, 100).copy()
    image.set_type(synth.vips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    data = image.icc_transform("srgb", embedded=False, input_profile="srgb").jpegsave_buffer(
        keep="all"
    )
    assert synth.decode(data).get_typeof("icc-profile-data")
    for fmt in ("jpeg", "png", "webp", "avif"):
        out = synth.decode(render(data, f"100,format={fmt}").data)
        assert not out.get_typeof("icc-profile-data"), fmt
        assert not out.get_typeof("exif-data"), fmt


# --- encoders -----------------------------------------------------------------------------


def test_jpeg_uses_mozjpeg_tools(synth):
    image = synth.coords(400, 300)
    rendition = render(image.pngsave_buffer(), "full,format=jpeg,quality=80")
    plain = image.jpegsave_buffer(Q=80)
    assert rendition.bytes < len(plain)  # trellis quantisation and optimised scans pay off
    assert synth.decode(rendition.data).get("jpeg-multiscan") == 1  # progressive


def test_png_presets_palette_for_low_and_lossless_for_high(synth):
    # Noisy, like a photo: oxipng makes a lossless PNG of a clean gradient smaller than any palette.
    noise = synth.vips.Image.gaussnoise(256, 256, sigma=12)
    photo = (synth.coords(256, 256) + noise).cast("uchar").pngsave_buffer()
    low, high = (
        render(photo, "full,format=png,quality=low"),
        render(photo, "full,format=png,quality=high"),
    )
    assert low.encoder_quality == 60 and high.encoder_quality is None
    assert synth.decode(low.data).get("palette-bit-depth") <= 8
    assert low.bytes < high.bytes


def test_fixed_quality_goes_to_the_encoder(synth):
    data = synth.coords(200, 200).pngsave_buffer()
    for fmt in ("jpeg", "webp", "avif"):
        rendition = render(data, f"full,format={fmt},quality=33")
        assert (rendition.quality, rendition.encoder_quality) == (33, 33)


@pytest.mark.parametrize("saver", ["gifsave_buffer", "webpsave_buffer"])
def test_animations_render_their_first_frame(saver, synth):
    frames = [synth.solid(60, 40, color) for color in ("FF0000", "00FF00", "0000FF")]
    strip = synth.vips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(synth.vips.GValue.gint_type, "page-height", 40)
    source = open_source(getattr(strip, saver)())
    assert source.info.frames == 3 and source.info.height == 40
    # A still format gets the first frame, and says so (animated outputs: test_animation.py).
    rendition = source.render(parse("full,format=png"))
    assert [w.code for w in rendition.warnings] == ["animation-dropped"]
    out = synth.decode(rendition.data)
    assert (out.width, out.height) == (60, 40) and close(out.getpoint(5, 5)[:3], [255, 0, 0], 2)


def test_jpeg_quality_only_goes_down(synth):
    data = synth.coords(300, 200).jpegsave_buffer(Q=40)
    rendition = render(data, "full,format=jpeg,quality=high")
    assert rendition.encoder_quality <= 45
    assert render(data, "full,format=webp,quality=high").encoder_quality > 45  # WebP: no cap


def test_a_much_smaller_jpeg_is_not_capped_at_the_source_quality(synth):
    # Shrunk 4x, the source's 8x8 blocks average away: the target, not the source, decides.
    noise = synth.vips.Image.gaussnoise(1200, 800, sigma=20)
    data = (synth.coords(1200, 800) + noise).cast("uchar").jpegsave_buffer(Q=40)
    assert render(data, "300,format=jpeg,quality=high").encoder_quality > 45
    assert render(data, "800,format=jpeg,quality=high").encoder_quality <= 45  # 1.5x: capped


@pytest.mark.parametrize("q", [20, 50, 75, 90, 98])
def test_jpeg_quality_estimate_matches_libjpeg(q, synth):
    assert abs(estimate_jpeg_quality(synth.coords(64, 64).jpegsave_buffer(Q=q)) - q) <= 1


# --- files, limits, time -----------------------------------------------------------------


def test_a_replaced_file_is_read_fresh(synth, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(synth.solid(50, 50, "FF0000").pngsave_buffer())
    first = synth.decode(open_source(path).render(parse("full,format=png")).data)
    path.write_bytes(synth.solid(50, 50, "0000FF").pngsave_buffer())
    second = synth.decode(open_source(path).render(parse("full,format=png")).data)
    assert first.getpoint(0, 0) == [255, 0, 0] and second.getpoint(0, 0) == [0, 0, 255]


def test_limits_are_configurable(synth):
    data = synth.coords(200, 100).pngsave_buffer()
    assert open_source(data, Limits(max_pixels=20_000)).info.width == 200
    with pytest.raises(ImageError) as caught:
        open_source(data, Limits(max_pixels=19_999))
    assert caught.value.code == "too-many-pixels" and caught.value.stage == "load"


def test_timeout_abandons_a_slow_rendition(synth):
    source = open_source(synth.coords(100, 100).pngsave_buffer())
    with pytest.raises(ImageError) as caught:
        source.render(parse("9000x9000,fit,format=png,timeout=0.001"))
    assert caught.value.code == "timeout" and "timeout=0.001" in str(caught.value)


def test_versions_name_libvips_for_cache_keys():
    found = versions()
    assert found["libvips"].count(".") == 2 and found["engine"] == ENGINE_VERSION
