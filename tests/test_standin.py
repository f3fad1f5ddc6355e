"""At `full`, the source file itself when time runs out or an encode would be larger (issue 12
item 7; imgpipe/engine/standin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import imgpipe
from imgpipe.cli import main
from imgpipe.errors import ImageError

pyvips = pytest.importorskip("pyvips")

PHOTOS = Path(__file__).resolve().parents[1] / "example-site/images/photos"


def pixels(data: bytes) -> bytes:
    image = pyvips.Image.new_from_buffer(data, "")
    return bytes(image.write_to_memory())


@pytest.fixture(scope="module")
def photo() -> bytes:
    return (PHOTOS / "storm.jpg").read_bytes()


def test_lossless_out_of_time_keeps_the_source_instead_of_failing(photo, tmp_path):
    """`full,quality=lossless` failed with error[timeout] on a 13 MP JPEG at the default 30 s.
    The budget here is 1 ms, which no decode and PNG encode of a photo fits in, on any
    machine: whichever step runs out of it, the answer is the same."""
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo)
    out = tmp_path / "out.jpg"
    result = CliRunner().invoke(
        main, ["optimize", "full,quality=lossless,timeout=0.001", str(source), "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert "warning[timeout-copied]:" in result.stderr
    assert pixels(out.read_bytes()) == pixels(photo)  # lossless: every pixel
    assert len(out.read_bytes()) <= len(photo)


def test_a_resized_rendition_out_of_time_still_fails(photo):
    with pytest.raises(ImageError) as caught:
        imgpipe.optimize(photo, "300,timeout=0.001")
    assert caught.value.code == "timeout"


def test_reoptimising_an_optimised_jpeg_never_grows_it(photo):
    once = imgpipe.optimize(photo, "full")
    twice = imgpipe.optimize(once.data, "full")
    assert twice.format == "jpeg"
    assert twice.bytes <= once.bytes  # was once.bytes + 10


def test_an_animated_gif_at_full_never_grows(photo):
    base = pyvips.Image.new_from_buffer(photo, "").thumbnail_image(200)
    frames = [base.linear(1, i * 8).cast("uchar") for i in range(6)]
    strip = pyvips.Image.arrayjoin(frames, across=1)
    strip.set_type(pyvips.GValue.gint_type, "page-height", base.height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * 6)
    gif = strip.gifsave_buffer()
    out = imgpipe.optimize(gif, "full")
    assert out.format == "gif" and out.bytes <= len(gif)  # was 768 bytes larger
    assert pyvips.Image.new_from_buffer(out.data, "", n=-1).get("n-pages") == 6


def test_a_source_with_exif_is_not_published_as_it_is(photo):
    """The file stands in only without what encoders strip: a JPEG is recoded losslessly
    (mozjpeg keeps no marker), so no GPS position leaks through a timeout."""
    image = pyvips.Image.new_from_buffer(photo, "").copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Someone Private")
    tagged = image.jpegsave_buffer(Q=95, keep="exif")
    assert b"Someone Private" in tagged
    out = imgpipe.optimize(tagged, "full,quality=lossless,timeout=0.001")
    assert [w.code for w in out.warnings] == ["timeout-copied"]
    assert b"Someone Private" not in out.data
    assert pixels(out.data) == pixels(tagged)
