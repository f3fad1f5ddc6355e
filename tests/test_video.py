"""format=webm (VP9) and format=h264 (H.264 in MP4) from animated GIFs, through PyAV: decoded
back with PyAV to check frame count, size, timing and colours; posters and <video> snippets
from a real build."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

pytest.importorskip("pyvips")
av = pytest.importorskip("av")

from animation_support import (  # noqa: E402
    COLOURS,
    DELAYS,
    coloured_frames,
    decode_video,
    gif,
    near,
    photo_frames,
    read_back,
)

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.engine import open_source  # noqa: E402
from imgpipe.errors import ImageError  # noqa: E402
from imgpipe.options import parse  # noqa: E402

CODECS = {"webm": "vp9", "h264": "h264"}


@pytest.fixture(scope="module")
def animation():
    return open_source(gif(coloured_frames(80, 60, 4)))


@pytest.mark.parametrize("fmt", ["webm", "h264"])
def test_video_has_every_frame_at_its_time_and_size(animation, fmt):
    rendition = animation.render(parse(f"format={fmt},quality=high"))
    video = decode_video(rendition.data)
    assert (video.codec, video.pix_fmt) == (CODECS[fmt], "yuv420p")
    assert (video.frames, video.width, video.height) == (4, 80, 60)
    assert (rendition.width, rendition.height) == (80, 60)
    starts = [sum(DELAYS[:i]) for i in range(4)]
    assert all(abs(a - b) <= 1 for a, b in zip(video.starts_ms, starts, strict=True))
    assert abs(video.duration_ms - sum(DELAYS)) <= min(DELAYS)  # within one frame


@pytest.mark.parametrize("fmt", ["webm", "h264"])
def test_video_colours_match_the_gif(animation, fmt):
    # Encoded as BT.709 and tagged so; a 601/709 mix-up shifts saturated colours by ~30 levels.
    data = animation.render(parse(f"format={fmt},quality=high")).data
    with av.open(io.BytesIO(data)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            assert near(tuple(int(v) for v in rgb[55, 70]), COLOURS[i], 16), (i, rgb[55, 70])


@pytest.mark.parametrize("fmt", ["webm", "h264"])
def test_video_starts_with_a_keyframe_and_mp4_is_faststart(animation, fmt):
    data = animation.render(parse(f"format={fmt}")).data
    with av.open(io.BytesIO(data)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
        assert first.is_keyframe  # <video loop> restarts without a seek to a keyframe
    if fmt == "h264":
        assert data.find(b"moov") < data.find(b"mdat")  # the index comes first


def test_odd_sizes_become_even():
    source = open_source(gif(coloured_frames(81, 61, 3), delays=(50, 50, 50)))
    rendition = source.render(parse("format=h264"))
    video = decode_video(rendition.data)
    assert (rendition.width, rendition.height) == (80, 60) == (video.width, video.height)


def test_video_of_a_photographic_animation_is_much_smaller_than_its_gif():
    frames = photo_frames(16, 160, 120, step=3)
    source = open_source(gif(frames, delays=[60] * 16))
    sizes = {fmt: source.render(parse(f"format={fmt}")).bytes for fmt in ("gif", "webm", "h264")}
    assert sizes["webm"] * 3 < sizes["gif"] and sizes["h264"] * 3 < sizes["gif"], sizes
    assert decode_video(source.render(parse("format=webm")).data).frames == 16


def test_quality_presets_order_video_bytes():
    source = open_source(gif(photo_frames(6, 96, 72), delays=[80] * 6))
    made = {q: source.render(parse(f"format=webm,quality={q}")) for q in ("low", "medium", "high")}
    sizes = [r.bytes for r in made.values()]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2], sizes
    lossless = source.render(parse("format=webm,quality=lossless"))
    assert [w.code for w in lossless.warnings] == ["lossless-video"]
    assert (lossless.quality, lossless.encoder_quality) == ("high", made["high"].encoder_quality)
    # the same frames and CRF make the same file (no random WebM segment ID)
    assert lossless.data == made["high"].data


def test_a_still_source_with_a_video_format_is_an_error_that_says_so(synth):
    still = open_source(synth.coords(64, 48).pngsave_buffer())
    for fmt in ("webm", "h264"):
        with pytest.raises(ImageError) as error:
            still.render(parse(f"format={fmt}"))
        assert error.value.code == "video-needs-animation"
        assert "this source is a still PNG image (1 frame)" in str(error.value)
        assert "use format=webp or format=avif for still images" in str(error.value)


SITE = """
source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"
jobs = 2

[[rules]]
include = ["*.gif"]
widths = [48, 96]
formats = ["webm", "h264"]

[[rules]]
include = ["hero.gif"]
renditions = { clip = "64,format=webm" }
"""


def test_a_build_writes_videos_posters_and_a_video_snippet(tmp_path: Path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/loop.gif").write_bytes(gif(coloured_frames(96, 72, 4)))
    (tmp_path / "images/once.gif").write_bytes(gif(coloured_frames(96, 72, 4), loop=1))
    (tmp_path / "images/hero.gif").write_bytes(gif(coloured_frames(96, 72, 4)))
    (tmp_path / "imgpipe.toml").write_text(SITE)
    config = load(tmp_path / "imgpipe.toml")
    summary = build(config)
    assert summary.ok and summary.warnings == ()  # a poster's "first frame only" is no news
    public = tmp_path / "public/img"

    snippet = (public / "_snippets/loop.gif.default.html").read_text()
    poster, webm, mp4 = re.findall(r'(?:poster|src)="/img/([^"]+)"', snippet)
    assert snippet.startswith('<video autoplay muted loop playsinline width="96" height="72" ')
    assert webm.endswith(".webm") and mp4.endswith(".mp4") and poster.endswith(".jpg")
    assert 'type="video/webm; codecs=vp9"' in snippet and 'type="video/mp4"' in snippet
    first = read_back((public / poster).read_bytes()).frames[0]
    assert (first.width, first.height) == (96, 72) and near(first.getpoint(90, 70), COLOURS[0])
    assert decode_video((public / webm).read_bytes()).frames == 4

    once = (public / "_snippets/once.gif.default.html").read_text()
    assert "<video autoplay muted playsinline " in once and " loop" not in once

    # One poster per width, shared by the WebM and the MP4; a named rendition has its own.
    names = sorted(p.name.split(".")[0] for p in public.glob("hero-*"))
    assert names == [
        "hero-48-h264",
        "hero-48-poster",
        "hero-48-webm",
        "hero-96-h264",
        "hero-96-poster",
        "hero-96-webm",
        "hero-clip",
        "hero-clip-poster",
    ]
    assert build(config).built == 0  # posters are cached like any rendition
