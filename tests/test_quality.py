"""Perceptual presets through the real engine: ordering, the JPEG cap, kept sources, timeouts.

Images stay small (a few hundred pixels) so the searches cost milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from imgpipe.engine import metric, open_source, optimise, search
from imgpipe.engine.encode import TARGETS, target_of
from imgpipe.engine.lossless import optimise_jpeg
from imgpipe.engine.quality import estimate_jpeg_quality
from imgpipe.engine.search import TOLERANCE
from imgpipe.errors import ImageError
from imgpipe.options import parse

PHOTOS = sorted((Path(__file__).parent.parent / "example-site/images/photos").glob("*.jpg"))


def render(data: bytes, options: str):
    return open_source(data).render(parse(options))


@pytest.fixture(scope="module")
def photo() -> bytes:
    import pyvips

    # A real photo, small: 360 px wide, saved near-losslessly so no cap applies.
    return pyvips.Image.new_from_file(str(PHOTOS[0])).thumbnail_image(360).jpegsave_buffer(Q=98)


@pytest.fixture(scope="module")
def graphic() -> bytes:
    """A sticker-like graphic: soft (antialiased) transparency, a textured fill, stripes."""
    import pyvips

    xy = pyvips.Image.xyz(256, 192)
    disc = ((xy[0] - 128) ** 2 + (xy[1] - 96) ** 2) ** 0.5
    alpha = ((80 - disc) * 64).cast("uchar")  # 255 inside, a soft edge, 0 outside
    stripes = ((xy[0] + xy[1]) % 24 < 12).ifthenelse(60, 0)
    fill = (
        (xy[0] + stripes)
        .cast("uchar")
        .bandjoin([(xy[1] * 1.3).cast("uchar"), ((xy[0] + xy[1]) / 2).cast("uchar")])
    )
    noise = pyvips.Image.gaussnoise(256, 192, sigma=20)
    return (fill + noise).cast("uchar").bandjoin(alpha).copy(interpretation="srgb").pngsave_buffer()


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_presets_order_bytes_and_scores_on_a_photo(photo, fmt):
    low, medium, high = (
        render(photo, f"300,format={fmt},quality={q}") for q in ("low", "medium", "high")
    )
    assert low.bytes < medium.bytes < high.bytes
    assert low.score < medium.score < high.score
    for r, preset in ((low, "low"), (medium, "medium"), (high, "high")):
        # Met; maybe overshot where the encoder jumps (mozjpeg stops subsampling chroma at 90).
        target = target_of(preset, fmt, r.width)  # the preset, corrected for format and size
        assert r.score >= target - TOLERANCE - 0.01, (preset, r.score)
        assert r.quality == preset and isinstance(r.encoder_quality, int)


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_presets_order_bytes_and_scores_on_a_graphic_with_alpha(graphic, fmt):
    low, medium, high = (
        render(graphic, f"200,format={fmt},quality={q}") for q in ("low", "medium", "high")
    )
    assert low.bytes < medium.bytes < high.bytes
    assert low.score < medium.score < high.score


def test_each_size_is_searched_from_a_probe_not_from_the_other_sizes(photo, monkeypatch):
    """A search's answer depends on where it starts: each starts from the source's probe
    (fixed by source, format and preset), so alone or among others it ends the same."""
    starts: list[tuple[int, int, int | None]] = []
    probing = []
    real_search, real_probe = optimise.search, optimise.Optimiser.probe

    def recording(final, encoding, guess, deadline, checks=3):
        found, encoded = real_search(final, encoding, guess, deadline, checks)
        if not probing:
            starts.append((final.width, guess, found.quality))
        return found, encoded

    def probe(self, image, recipe):
        probing.append(1)
        try:
            return real_probe(self, image, recipe)
        finally:
            probing.pop()

    monkeypatch.setattr(optimise, "search", recording)
    monkeypatch.setattr(optimise.Optimiser, "probe", probe)
    recipes = [parse(f"{w},format=webp") for w in (320, 240, 160)]
    results = open_source(photo).render_all(recipes)
    assert [r.width for r in results] == [320, 240, 160]  # results keep the request order
    assert all(abs(r.score - TARGETS["medium"]) <= TOLERANCE + 0.01 for r in results)
    together = sorted(starts)
    starts.clear()
    for recipe in recipes:
        open_source(photo).render(recipe)
    assert sorted(starts) == together and len(together) == 3


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_a_search_bigger_than_the_probe_starts_from_its_answer_moved_by_the_drift(fmt, monkeypatch):
    """From the probe's 320 px answer, a bigger rendition's search starts where the drift
    measured for its format puts it (optimise.PROBE_DRIFT: JPEG and AVIF lower, WebP higher),
    so its first encode lands within the tolerance more often: fewer full-size encodes."""
    calls: list[tuple[int, int, int | None]] = []  # (width, start, answer), probe first
    real_search = optimise.search

    def recording(final, encoding, guess, deadline, checks=3):
        found, encoded = real_search(final, encoding, guess, deadline, checks)
        calls.append((final.width, guess, found.quality))
        return found, encoded

    import pyvips

    big = pyvips.Image.new_from_file(str(PHOTOS[0])).thumbnail_image(1280).jpegsave_buffer(Q=98)
    monkeypatch.setattr(optimise, "search", recording)
    result = open_source(big).render(parse(f"1280,format={fmt}"))
    (probe_width, _, probed), (width, start, _) = calls
    assert (probe_width, width) == (optimise.PROBE_BOX, 1280)
    assert start == probed + round(2 * optimise.PROBE_DRIFT[fmt])  # two doublings above it
    assert abs(result.score - target_of("medium", fmt, 1280)) <= TOLERANCE + 0.01


def test_fixed_quality_is_not_searched(photo):
    r = render(photo, "300,format=avif,quality=40")
    assert (r.quality, r.encoder_quality, r.score) == (40, 40, None)


def test_a_jpeg_search_lands_on_its_target_where_mozjpeg_would_stop_subsampling_chroma(
    monkeypatch,
):
    """mozjpeg's default keeps full chroma from quality 90 up: one step in the search's range
    jumped the score by ~3 points, so a photo needing 4:2:0 at q90 or more landed far above
    its target (and its bytes). A search keeps one chroma mode, trying full chroma apart.
    (The metric's scores alone: butteraugli's check, judge.py, sees the 1 px colour stripes
    the metric's 1:4 scale cannot, and would move the target.)"""
    import pyvips

    from imgpipe.engine import judge

    monkeypatch.setattr(judge.Check, "correction", lambda *args: 0.0)

    lab = pyvips.Image.new_from_file(str(PHOTOS[0])).thumbnail_image(400).colourspace("lab")
    columns = (pyvips.Image.xyz(lab.width, lab.height)[0] % 2) * 20 - 10  # fine colour detail
    striped = lab[0].bandjoin([lab[1] + columns, lab[2] - columns]).copy(interpretation="lab")
    data = striped.colourspace("srgb").cast("uchar").pngsave_buffer()
    r = render(data, "400,format=jpeg,quality=high")
    assert abs(r.score - target_of("high", "jpeg", 400)) <= TOLERANCE, r


# --- JPEG quality only goes down ---------------------------------------------------------------


@pytest.fixture(scope="module")
def poor_jpeg() -> bytes:
    import pyvips

    return pyvips.Image.new_from_file(str(PHOTOS[1])).thumbnail_image(320).jpegsave_buffer(Q=30)


@pytest.mark.parametrize(
    "options",
    [
        "200,format=jpeg,quality=high",
        "full,format=jpeg,quality=high",
        "200,format=jpeg",
        "200,format=jpeg,quality=low",
    ],
)
def test_a_low_quality_jpeg_is_never_reencoded_higher(poor_jpeg, options):
    source_quality = estimate_jpeg_quality(poor_jpeg)
    assert source_quality == 30
    r = render(poor_jpeg, options)
    assert r.encoder_quality <= source_quality


def test_a_jpeg_capped_below_the_target_keeps_its_own_pixels_losslessly_optimised(poor_jpeg, synth):
    # Re-encoded at its own quality 30 it would lose more (score ~84 for a target of 91)
    # for a few bytes: its own pixels, recoded losslessly, are both exact and small.
    exif = synth.decode(poor_jpeg).copy()
    exif.set_type(synth.vips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    source = exif.jpegsave_buffer(Q=30, keep="exif")  # a low quality source with metadata
    r = render(source, "full,format=jpeg,quality=high")
    assert r.bytes < len(source)
    assert (synth.decode(r.data) - synth.decode(source)).abs().max() == 0
    assert not synth.decode(r.data).get_typeof("exif-data")
    assert r.score == 100.0 and r.encoder_quality == 30


# --- format=auto ---------------------------------------------------------------------------


def test_auto_takes_the_smaller_of_png_and_jpeg_for_a_graphic(synth):
    logo = synth.block(300, 200, "FFFFFF", [40, 40, 120, 80], "1155AA")
    auto = render(logo.pngsave_buffer(), "200")
    candidates = [render(logo.pngsave_buffer(), f"200,format={f}") for f in ("png", "jpeg")]
    assert auto.bytes == min(c.bytes for c in candidates)


# --- timeout= bounds the search ---------------------------------------------------------------


def test_on_timeout_the_best_so_far_is_used_with_a_warning(photo, monkeypatch):
    # The search reads an injected clock, which an encode moves on by an hour: the deadline
    # passes after exactly one encode, however long the decode took on a busy machine (a real
    # 0.2 s budget could be spent before the first encode; then nothing was tried).
    late = [0.0]
    monkeypatch.setattr(
        search, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + late[0])
    )
    real_encode, real_find = optimise.encode, search.find_quality

    def slow(*args, **kwargs):
        late[0] += 3600
        return real_encode(*args, **kwargs)

    def find(*args, **kwargs):  # each search starts on time (the probes' too)
        late[0] = 0.0
        return real_find(*args, **kwargs)

    monkeypatch.setattr(optimise, "encode", slow)
    monkeypatch.setattr(search, "find_quality", find)
    # Never good enough, so the search would go on if the clock let it.
    monkeypatch.setattr(metric.Reference, "score", lambda self, distorted, fmt=None: 50.0)
    r = render(photo, "300,format=webp,timeout=60")
    assert [w.code for w in r.warnings] == ["timeout-search"]
    assert "timeout=60s after 1 encodes" in r.warnings[0].message
    assert r.score == 50.0 and isinstance(r.encoder_quality, int)


def test_with_nothing_in_time_a_fitting_source_is_copied(photo, monkeypatch):
    monkeypatch.setattr(search, "find_quality", lambda *a, **k: optimise.Found(None, None))
    r = render(photo, "full,format=jpeg,timeout=60")
    assert [w.code for w in r.warnings] == ["timeout-copied"]
    # The source's own coefficients, recoded losslessly where that is smaller (standin.py).
    assert r.data in (photo, optimise_jpeg(photo)) and r.bytes <= len(photo)


def test_with_nothing_in_time_and_no_fitting_source_it_fails(photo, monkeypatch):
    monkeypatch.setattr(search, "find_quality", lambda *a, **k: optimise.Found(None, None))
    with pytest.raises(ImageError) as caught:
        render(photo, "200,format=jpeg,timeout=60")  # resized: the source does not fit
    assert caught.value.code == "timeout"


# --- the metric ------------------------------------------------------------------------------


def test_the_score_falls_as_the_damage_grows(photo, synth):
    image = synth.decode(photo)
    reference = metric.Reference(image)
    scores = [reference.score(synth.decode(image.jpegsave_buffer(Q=q))) for q in (95, 70, 40, 10)]
    assert scores == sorted(scores, reverse=True) and scores[0] > 90 > scores[-1]
    assert reference.score(image) >= scores[0]
    assert not metric.scorable(60, 400) and metric.scorable(64, 64)


def test_fine_grain_in_the_original_hides_errors(photo, synth):
    """Butteraugli forgives more in a photo busy with fine detail than in a smooth one (the
    per-photo bias, fitted: metric.BIAS_WEIGHTS): grain added to an original lowers the
    distance any encoding of it is judged by, and only grain finer than what is there."""
    import pyvips

    image = synth.decode(photo)
    grain = pyvips.Image.gaussnoise(image.width, image.height, sigma=8, mean=0)
    grainy = (image + grain).cast("uchar").copy(interpretation="srgb")
    blurred = image.gaussblur(1.5).copy(interpretation="srgb")
    assert metric.Reference(grainy).bias < metric.Reference(image).bias
    assert metric.Reference(blurred).bias > metric.Reference(image).bias


@pytest.mark.parametrize(
    ("fmt", "plain"),
    [
        # aom tuned for SSIM: a quarter less CPU than libvips' default (tune=iq) for the same
        # bytes at the same butteraugli, once the search has met the target (bench_quality.py).
        ("avif", lambda im, q: im.heifsave_buffer(compression="av1", Q=q, effort=3, tune="ssim")),
        # libwebp's own chroma subsampling: sharp YUV (smart_subsample) costs 2.6x the encode
        # for a few percent of bytes at the same score.
        ("webp", lambda im, q: im.webpsave_buffer(Q=q)),
    ],
)
def test_the_searched_encoders_use_their_cheap_settings(photo, fmt, plain):
    import pyvips

    from imgpipe.engine.encode import Encoding, encode

    image = pyvips.Image.jpegload_buffer(photo)
    assert encode(image, Encoding(fmt, 60, 60)) == plain(image, 60)


def test_a_webp_of_sharp_colour_edges_is_searched_again_with_sharp_yuv():
    """libwebp's own chroma subsampling smears saturated colour edges so that even quality 95
    misses the target on them: such a WebP is searched again with sharp YUV and meets it."""
    import pyvips

    xyz = pyvips.Image.xyz(960, 540)
    ramps = (xyz[0] % 256).bandjoin([xyz[1] % 256, (xyz[0] + xyz[1]) % 256]).cast("uchar")
    edges = ramps.copy(interpretation="srgb").pngsave_buffer()
    result = render(edges, "720,format=webp")
    plain = optimise.Encoding("webp", 95, 95)
    image = pyvips.Image.pngload_buffer(edges).resize(0.75)
    reference = metric.Reference(image)
    at_best = reference.score(pyvips.Image.webpload_buffer(optimise.encode(image, plain)), "webp")
    target = target_of("medium", "webp", 720)
    assert at_best < target - TOLERANCE  # plain subsampling cannot get there
    assert result.score >= target - TOLERANCE
