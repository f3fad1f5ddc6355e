"""Bad input: a clear one-line error with a stable code, and no output file left behind."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgpipe.cli import main
from imgpipe.engine import Limits, open_source
from imgpipe.errors import ImageError
from imgpipe.options import parse

HOSTILE = Path(__file__).parent / "data" / "hostile"


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
    b'width="64" height="64"><rect width="64" height="64" fill="red"/></svg>\n'
)


def _cases(synth) -> dict[str, tuple[str, bytes, str, str]]:
    """name -> (file name, bytes, expected code, a word the message must contain)."""
    photo = synth.coords(300, 200)
    jpeg, png = photo.jpegsave_buffer(Q=90), photo.pngsave_buffer()
    return {
        "zero-byte": ("empty.jpg", b"", "empty-file", "empty"),
        "garbage": ("noise.jpg", bytes(range(256)) * 8, "unknown-format", "not a recognised"),
        "truncated-jpeg": ("cut.jpg", jpeg[: len(jpeg) // 2], "truncated", "ends early"),
        "truncated-png": ("cut.png", png[: len(png) // 2], "truncated", "ends early"),
        "huge-header-png": (
            "bomb.png",
            _png_claiming(60000, 60000),
            "too-many-pixels",
            "60000x60000",
        ),
        "bmp": (
            "old.bmp",
            (HOSTILE / "afl__bmp_not_kitty.bmp").read_bytes(),
            "blocked-format",
            "BMP",
        ),
        "jpeg-2000": (
            "scan.jp2",
            (HOSTILE / "afl__jp2_not_kitty.jp2").read_bytes(),
            "blocked-format",
            "JPEG 2000",
        ),
        "ico": (
            "favicon.ico",
            (HOSTILE / "afl__ico_not_kitty.ico").read_bytes(),
            "blocked-format",
            "ICO",
        ),
        "renamed-svg": ("logo.jpg", SVG, "blocked-format", "SVG"),
    }


CASE_NAMES = [
    "zero-byte",
    "garbage",
    "truncated-jpeg",
    "truncated-png",
    "huge-header-png",
    "bmp",
    "jpeg-2000",
    "ico",
    "renamed-svg",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_is_one_clear_line_and_no_output(case, synth, tmp_path):
    filename, data, code, word = _cases(synth)[case]
    source = tmp_path / filename
    source.write_bytes(data)
    out = tmp_path / "out" / "result.jpg"
    out.parent.mkdir()

    result = CliRunner().invoke(main, ["optimize", "200", str(source), "-o", str(out)])

    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error[{code}]: {source}: ")
    assert word in lines[0]
    assert "expected" in lines[0] and "Traceback" not in result.output
    assert list(out.parent.iterdir()) == []  # no output, no temp file


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_from_bytes_raises_image_error(case, synth):
    _, data, code, _ = _cases(synth)[case]
    with pytest.raises(ImageError) as caught:
        open_source(data).render(parse("200"))
    assert caught.value.code == code
    assert caught.value.exit_code == 1
    assert "\n" not in str(caught.value)


def test_renamed_svg_never_reaches_a_loader(synth, tmp_path):
    # Blocked by content before libvips is asked, and libvips' own SVG loader is blocked too.
    import pyvips

    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(SVG, "")
    source = tmp_path / "photo.png"
    source.write_bytes(b"\xef\xbb\xbf  <!-- made by hand -->\n<SVG xmlns='x'/>")
    with pytest.raises(ImageError) as caught:
        open_source(source)
    assert caught.value.code == "blocked-format"


def test_truncated_jpeg_is_an_error_not_grey(synth):
    jpeg = synth.coords(400, 400).jpegsave_buffer(Q=90)
    cut = jpeg[: int(len(jpeg) * 0.7)]
    with pytest.raises(ImageError) as caught:
        open_source(cut).render(parse("full,format=png"))
    assert (caught.value.code, caught.value.stage) == ("truncated", "decode")


def test_file_over_the_size_limit_is_refused_before_reading(synth, tmp_path):
    source = tmp_path / "big.jpg"
    source.write_bytes(synth.coords(300, 200).jpegsave_buffer(Q=95))
    limits = Limits(max_bytes=1000)
    with pytest.raises(ImageError) as caught:
        open_source(source, limits)
    assert caught.value.code == "file-too-large"
    assert "1.0 KB input limit" in str(caught.value) and str(source) in str(caught.value)
    with pytest.raises(ImageError):
        open_source(source.read_bytes(), limits)


def test_pixel_limit_counts_every_frame(synth):
    frames = [synth.solid(100, 100, f"{i * 20:02X}3366") for i in range(10)]
    strip = synth.vips.Image.arrayjoin(frames, across=1).copy()  # 10 frames of 100x100
    strip.set_type(synth.vips.GValue.gint_type, "page-height", 100)
    gif = strip.gifsave_buffer()
    assert open_source(gif, Limits(max_pixels=100_000)).info.frames == 10
    with pytest.raises(ImageError) as caught:
        open_source(gif, Limits(max_pixels=99_999))
    assert caught.value.code == "too-many-pixels" and "10 frames" in str(caught.value)


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(ImageError) as caught:
        open_source(tmp_path / "nope.jpg")
    assert caught.value.code == "unreadable"


def test_existing_output_is_untouched_on_error(tmp_path):
    source = tmp_path / "empty.jpg"
    source.write_bytes(b"")
    out = tmp_path / "out.jpg"
    out.write_bytes(b"previous build")
    result = CliRunner().invoke(main, ["optimize", "200", str(source), "-o", str(out)])
    assert result.exit_code == 1
    assert out.read_bytes() == b"previous build"
