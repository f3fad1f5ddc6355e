"""The byte sniffer decides which loader may run: a table of first bytes -> verdict. Pure."""

from __future__ import annotations

import pytest

from imgpipe.engine.quality import estimate_jpeg_quality, luminance_table
from imgpipe.engine.sniff import claimed_size, is_complete, sniff

ALLOWED_CASES = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
    (b"GIF89a\x10\x00\x10\x00", "gif"),
    (b"GIF87a\x10\x00\x10\x00", "gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
    (b"II*\x00\x08\x00\x00\x00", "tiff"),
    (b"MM\x00*\x00\x00\x00\x08", "tiff"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "heif"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heif"),
    (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "heif"),
]

BLOCKED_CASES = [
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg/>', "SVG"),
    (b"  \n<!-- x -->\n<SVG/>", "SVG"),
    (b"%PDF-1.7\n", "PDF"),
    (b"BM\x36\x00\x0c\x00", "BMP"),
    (b"\x00\x00\x01\x00\x01\x00\x10\x10", "ICO"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00", "JPEG 2000"),
    (b"\xff\x4f\xff\x51\x00\x2f", "JPEG 2000"),
    (b"\xff\x0a\xfa\x7f", "JPEG XL"),
    (b"8BPS\x00\x01", "Photoshop"),
    (b"P6\n10 10\n255\n", "PNM"),
    (b"\x1f\x8b\x08\x00", "gzip"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "ISO media"),
]


@pytest.mark.parametrize(("head", "family"), ALLOWED_CASES)
def test_allowed_types_are_recognised_by_content(head, family):
    found = sniff(head + b"\x00" * 32)
    assert found.kind is not None and found.kind.family == family and found.blocked is None


@pytest.mark.parametrize(("head", "word"), BLOCKED_CASES)
def test_known_other_formats_are_named_and_refused(head, word):
    found = sniff(head + b"\x00" * 32)
    assert found.kind is None and word in found.blocked


@pytest.mark.parametrize(
    "head",
    [b"", b"hello world", b"<html><body>404</body></html>", b"\x89PNX\r\n\x1a\n", b"\xff\xd8"],
)
def test_everything_else_is_unknown(head):
    found = sniff(head)
    assert found.kind is None and found.blocked is None


def test_claimed_size_reads_png_and_gif_headers_without_a_decoder():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2
    assert claimed_size("png", png) == (60000, 60000)
    assert claimed_size("gif", b"GIF89a\xff\xff\x10\x00") == (65535, 16)
    assert claimed_size("jpeg", b"\xff\xd8\xff") is None


def test_completeness_of_png_and_jpeg_endings():
    assert is_complete("png", b"...\x00\x00\x00\x00IEND\xaeB`\x82") is True
    assert is_complete("png", b"...IDAT....") is False
    assert is_complete("jpeg", b"\xff\xd8...\xff\xd9") is True
    assert is_complete("jpeg", b"\xff\xd8...") is False
    assert is_complete("tiff", b"II*\x00") is None


def test_quality_estimate_needs_a_quantization_table():
    assert luminance_table(b"\xff\xd8\xff\xda\x00\x02") is None
    assert estimate_jpeg_quality(b"\xff\xd8") is None
    table = bytes([0x00]) + bytes([1] * 64)  # 8-bit table 0, all ones: libjpeg quality 100
    dqt = b"\xff\xdb" + (2 + len(table)).to_bytes(2, "big") + table
    assert estimate_jpeg_quality(b"\xff\xd8" + dqt + b"\xff\xda\x00\x02") >= 99
