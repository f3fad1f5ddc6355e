"""What kind of image a byte string is, from its first bytes alone. Pure: no pyvips.

File extensions lie: a `.jpg` can hold an SVG, an HTML error page or a JPEG 2000. The engine
decides which loader to call from these signatures only, and only loaders in `ALLOWED` are
ever called. Everything else is refused before libvips sees the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """An allow-listed source type and the libvips loader that reads it."""

    family: str  # SourceInfo.format: jpeg, png, webp, gif, tiff, heif
    label: str  # for messages
    loader: str  # the pyvips operation called for it, explicitly
    animated: bool = False  # frames count towards the pixel limit


ALLOWED: dict[str, Kind] = {
    k.family: k
    for k in (
        Kind("jpeg", "JPEG", "jpegload_buffer"),
        Kind("png", "PNG", "pngload_buffer"),
        Kind("webp", "WebP", "webpload_buffer", animated=True),
        Kind("gif", "GIF", "gifload_buffer", animated=True),
        Kind("tiff", "TIFF", "tiffload_buffer"),
        Kind("heif", "HEIF/AVIF", "heifload_buffer"),
    )
}
ALLOWED_LABELS = "a JPEG, PNG, WebP, GIF, TIFF, HEIF or AVIF image"

# ISO-BMFF brands that libheif reads as still images (HEIC and AVIF).
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
}

# Known formats that are refused, whatever the file is named: either libvips cannot read them
# without a broad, untrusted loader (ImageMagick, poppler, librsvg...) or they are not images
# a static site should rebuild. Checked in order; the first match names the format.
_BLOCKED: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF", 0, "a PDF document"),
    (b"BM", 0, "a BMP image"),
    (b"\x00\x00\x01\x00", 0, "an ICO icon"),
    (b"\x00\x00\x02\x00", 0, "a CUR cursor"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", 0, "a JPEG 2000 codestream"),
    (b"II\xbc", 0, "a JPEG XR image"),
    (b"\xff\x0a", 0, "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "a JPEG XL image"),
    (b"8BPS", 0, "a Photoshop document"),
    (b"\x76\x2f\x31\x01", 0, "an OpenEXR image"),
    (b"#?RADIANCE", 0, "a Radiance HDR image"),
    (b"SIMPLE  =", 0, "a FITS file"),
    (b"MATLAB", 0, "a MATLAB file"),
    (b"\x08\xf2\xa6\xb6", 0, "a VIPS image"),
    (b"\xb6\xa6\xf2\x08", 0, "a VIPS image"),
    (b"\x1f\x8b", 0, "gzip-compressed data (an SVGZ?)"),
    (b"PK\x03\x04", 0, "a ZIP archive"),
    (b"DICM", 128, "a DICOM file"),
)


@dataclass(frozen=True)
class Sniffed:
    """Exactly one of `kind` (allowed) or `blocked` (a known, refused format) or neither."""

    kind: Kind | None = None
    blocked: str | None = None


def sniff(data: bytes) -> Sniffed:
    head = data[:4096]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(ALLOWED["jpeg"])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(ALLOWED["png"])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(ALLOWED["gif"])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(ALLOWED["webp"])
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Sniffed(ALLOWED["tiff"])
    if head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
        if brands & _HEIF_BRANDS:
            return Sniffed(ALLOWED["heif"])
        return Sniffed(
            blocked=f"an ISO media file of brand {head[8:12].decode('latin-1')!r} "
            "(a video or camera raw?)"
        )
    if _is_svg(head):
        return Sniffed(blocked="an SVG document")
    for magic, offset, name in _BLOCKED:
        if head[offset : offset + len(magic)] == magic:
            return Sniffed(blocked=name)
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"1234567f":
        return Sniffed(blocked="a PNM/PFM image")
    return Sniffed()


def is_svg(data: bytes) -> bool:
    """An SVG document, judged as librsvg would (see `_is_svg`)."""
    return _is_svg(data[:4096])


def _is_svg(head: bytes) -> bool:
    # librsvg sniffs for an <svg element near the start; do the same, ignoring case, a BOM,
    # an XML declaration, comments and a DOCTYPE, so that no SVG slips through as "unknown".
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and b"<svg" in text


def is_complete(family: str, data: bytes) -> bool | None:
    """Whether the data ends the way a complete file of this family must (None: cannot tell).

    Used only to word a decode failure: libpng reports a short file as a generic "read error".
    """
    tail = data[-64:].rstrip(b"\x00")
    if family == "png":
        return b"IEND" in data[-64:]
    if family == "jpeg":
        return b"\xff\xd9" in tail
    if family == "gif":
        return tail.endswith(b";")
    if family == "webp" and len(data) >= 8:
        return int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return None


def claimed_size(family: str, data: bytes) -> tuple[int, int] | None:
    """The canvas size a PNG or GIF header claims, read without any decoder."""
    if family == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if family == "gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None
