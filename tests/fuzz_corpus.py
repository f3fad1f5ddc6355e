"""A seeded corpus of hostile files, generated (never committed): mutations of real photos and
PNGs, degenerate shapes, frame bombs and SVGs with inline rasters. Used by tests/test_fuzz.py.

Each family is a function of a `random.Random`, so a failure names a file that the same seed
makes again. Files stay small (the biggest is a 200 KB PNG claiming 100 million rows): the
point is what a decoder is made to do, not how many bytes it reads.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
PHOTOS = sorted((ROOT / "example-site" / "images" / "photos").glob("*.jpg"))
PNGS = [
    ROOT / "tests" / "data" / "hostile" / f"pngsuite__{name}.png"
    for name in ("basn2c08", "basi2c16", "basn3p08", "basn6a08", "basi0g04", "basn4a16")
]


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    data: bytes


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(width: int, height: int, colour: int = 0) -> bytes:
    """A flat PNG of any size, streamed through zlib: 1x100,000,000 takes 194 KB."""
    row = b"\0" + b"\x80" * (width * {0: 1, 2: 3}[colour])
    deflate, parts, left = zlib.compressobj(9), [], height
    per_call = max(1, (1 << 20) // len(row))
    while left:
        n = min(left, per_call)
        parts.append(deflate.compress(row * n))
        left -= n
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def gif_frames(frame_gif: bytes, count: int) -> bytes:
    """`frame_gif` (one frame, a global colour table) with that frame repeated `count` times:
    a few KB that decode to count x width x height pixels."""
    flags = frame_gif[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    body = frame_gif[start:].rstrip(b";")
    while body[:2] == b"!\xf9" or body[:1] == b"!":  # drop the extensions before the frame
        pos = 2
        while body[pos]:
            pos += body[pos] + 1
        body = body[pos + 1 :]
    control = b"!\xf9\x04\x04\x0a\x00\x00\x00"  # 100 ms, keep the previous frame
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return frame_gif[:start] + loop + (control + body) * count + b";"


def _scan_start(jpeg: bytes) -> int:
    sos = jpeg.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")


def _mutate_bytes(data: bytes, rng: random.Random, start: int, end: int, count: int) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        out[rng.randrange(start, end)] = rng.randrange(256)
    return bytes(out)


def _png_chunks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        yield pos, data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def seeds(vips) -> tuple[list[bytes], list[bytes]]:
    """Real JPEGs (the example site's photos, made small so each run is quick) and PNGs."""
    jpegs = []
    for path in PHOTOS:
        image = vips.Image.thumbnail_buffer(path.read_bytes(), 320).copy_memory()
        jpegs.append(image.jpegsave_buffer(Q=85))
        jpegs.append(image.jpegsave_buffer(Q=70, interlace=True))  # progressive
    pngs = [path.read_bytes() for path in PNGS]
    pngs.append(vips.Image.thumbnail_buffer(PHOTOS[0].read_bytes(), 200).pngsave_buffer())
    return jpegs, pngs


def mutated(vips, seed: int, per_kind: int) -> list[Case]:
    """Truncations, random bytes in the scan data and flipped header fields of real files:
    `per_kind` of each kind, spread over the seed files."""
    rng = random.Random(seed)
    jpegs, pngs = seeds(vips)
    cases = []
    for i in range(per_kind):
        jpeg = jpegs[i % len(jpegs)]
        scan = _scan_start(jpeg)
        cases.append(Case("jpeg-truncated", f"jt{i}.jpg", jpeg[: rng.randrange(2, len(jpeg))]))
        cases.append(
            Case(
                "jpeg-scan",
                f"js{i}.jpg",
                _mutate_bytes(jpeg, rng, scan, len(jpeg) - 2, rng.choice((1, 4, 16))),
            )
        )
        cases.append(
            Case(
                "jpeg-header",
                f"jh{i}.jpg",
                _mutate_bytes(jpeg, rng, 2, scan, rng.choice((1, 2, 4))),
            )
        )
    for i in range(per_kind):
        data = pngs[i % len(pngs)]
        cases.append(Case("png-truncated", f"pt{i}.png", data[: rng.randrange(8, len(data))]))
        cases.append(Case("png-scan", f"ps{i}.png", _png_mutate_idat(data, rng)))
        cases.append(Case("png-header", f"ph{i}.png", _png_mutate_ihdr(data, rng)))
    return cases


def _png_mutate_idat(data: bytes, rng: random.Random) -> bytes:
    """Random bytes in the compressed pixels; every other file gets its CRCs fixed, so libpng
    inflates the damage instead of stopping at the checksum."""
    out = bytearray()
    fix = rng.random() < 0.5
    out += data[:8]
    for pos, kind, body in _png_chunks(data):
        if kind == b"IDAT" and body:
            body = _mutate_bytes(body, rng, 0, len(body), rng.choice((1, 3, 8)))
            out += (
                chunk(kind, body)
                if fix
                else data[pos : pos + 8] + body + data[pos + 8 + len(body) : pos + 12 + len(body)]
            )
        else:
            out += data[pos : pos + 12 + len(body)]
    return bytes(out)


def _png_mutate_ihdr(data: bytes, rng: random.Random) -> bytes:
    """One IHDR field set to a random or extreme value, CRC fixed."""
    width, height, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    field = rng.randrange(5)
    if field == 0:
        width = rng.choice((0, 1, 65536, 2**31 - 1, rng.randrange(1, 5000)))
    elif field == 1:
        height = rng.choice((0, 1, 65536, 2**31 - 1, rng.randrange(1, 5000)))
    elif field == 2:
        depth = rng.choice((0, 3, 7, 16, 32, 255))
    elif field == 3:
        colour = rng.choice((1, 3, 5, 7, 255))
    else:
        interlace = rng.choice((1, 2, 255))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, comp, filt, interlace)
    return data[:8] + chunk(b"IHDR", header) + data[33:]


def degenerate(vips) -> list[Case]:
    """1xN and Nx1, from harmless to the 1x100,000,000 PNG that once took 229 s."""
    cases = [
        Case("degenerate", f"png-{w}x{h}.png", png(w, h))
        for w, h in (
            (1, 60000),
            (60000, 1),
            (1, 65501),
            (65501, 1),
            (1, 1_000_000),
            (1_000_000, 1),
            (1, 100_000_000),
            (100_000_000, 1),
        )
    ]
    cases.append(Case("degenerate", "png-65500x1526.png", png(65500, 1526)))
    line = vips.Image.black(1, 60000) + 128
    cases.append(Case("degenerate", "jpeg-1x60000.jpg", line.cast("uchar").jpegsave_buffer()))
    cases.append(
        Case(
            "degenerate",
            "gif-65535x1.gif",
            (vips.Image.black(65535, 1) + 9).cast("uchar").gifsave_buffer(),
        )
    )
    return cases


def frame_bombs(vips) -> list[Case]:
    """Animations whose frames add up: at the pixel limit, over it, and over the frame limit."""
    xy = vips.Image.xyz(1000, 1000)  # ten stripes of colour: 30 KB a frame
    frame = (xy[0] // 100 * 25).bandjoin([xy[1] // 100 * 25, xy[0] * 0 + 99]).cast("uchar")
    big = frame.gifsave_buffer(effort=1)
    small = frame.crop(0, 0, 10, 10).gifsave_buffer()
    return [
        Case("frame-bomb", "gif-1000x1000x98.gif", gif_frames(big, 98)),  # 98 Mpx, allowed
        Case("frame-bomb", "gif-1000x1000x101.gif", gif_frames(big, 101)),  # 101 Mpx
        Case("frame-bomb", "gif-10x10x5000.gif", gif_frames(small, 5000)),  # frame limit
    ]


def svgs(vips) -> list[Case]:
    def svg(*uris: str, extra: str = "") -> bytes:
        images = "".join(f'<image href="{uri}" width="50" height="50"/>' for uri in uris)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
            f"{images}{extra}</svg>"
        ).encode()

    def inline(data: bytes, mime: str = "png") -> str:
        return f"data:image/{mime};base64," + base64.b64encode(data).decode()

    small = inline(vips.Image.black(64, 64).cast("uchar").pngsave_buffer())
    photo = inline(
        vips.Image.thumbnail_buffer(PHOTOS[0].read_bytes(), 100).jpegsave_buffer(), "jpeg"
    )
    huge = inline(png(20000, 20000))  # 400 megapixels in 400 KB
    tall = inline(png(1, 100_000_000))
    return [
        Case("svg", "inline-small.svg", svg(small, photo)),
        Case("svg", "inline-20000x20000.svg", svg(huge)),
        Case("svg", "inline-1x100000000.svg", svg(tall)),
        Case("svg", "inline-many.svg", svg(*[inline(png(4000, 4000))] * 8)),  # 8 x 16 Mpx
        Case("svg", "inline-bad-base64.svg", svg("data:image/png;base64,!!notbase64!!")),
        Case("svg", "inline-bmp.svg", svg(inline(b"BM" + b"\0" * 60))),
        Case("svg", "css-escaped-import.svg", svg(extra='<style>@\\69mport "/etc/x";</style>')),
        Case(
            "svg",
            "css-escaped-url.svg",
            svg(extra='<rect width="9" height="9" style="fill: u\\72l(http://127.0.0.1/)"/>'),
        ),
    ]


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + body)


def heic_without_decoder(width: int = 64, height: int = 48) -> bytes:
    """A minimal HEIC (one hvc1 image item) whose HEVC stream is 16 bytes of nothing: enough
    for libheif to read the header and then need an HEVC decoder."""
    payload = b"\x00\x00\x00\x0c" + b"\x26\x01" + b"\xaf" * 10  # a NAL of sorts
    ftyp = _box(b"ftyp", b"heic" + b"\0\0\0\0" + b"mif1heic")
    hdlr = _full(b"hdlr", 0, 0, b"\0\0\0\0pict" + b"\0" * 12 + b"\0")
    pitm = _full(b"pitm", 0, 0, struct.pack(">H", 1))
    infe = _full(b"infe", 2, 0, struct.pack(">HH", 1, 0) + b"hvc1" + b"\0")
    iinf = _full(b"iinf", 0, 0, struct.pack(">H", 1) + infe)
    hvcc = _box(
        b"hvcC",
        bytes(
            [
                1,
                1,
                0x60,
                0,
                0,
                0,
                0x90,
                0,
                0,
                0,
                0,
                0,
                90,
                0xF0,
                0,
                0xFC,
                0xFD,
                0xF8,
                0xF8,
                0,
                0,
                0x0F,
                0,
            ]
        ),
    )
    ispe = _full(b"ispe", 0, 0, struct.pack(">II", width, height))
    ipco = _box(b"ipco", hvcc + ispe)
    ipma = _full(b"ipma", 0, 0, struct.pack(">IHB", 1, 1, 2) + bytes([0x81, 0x02]))
    iprp = _box(b"iprp", ipco + ipma)

    def meta(offset: int) -> bytes:
        iloc = _full(
            b"iloc",
            0,
            0,
            bytes([0x44, 0x00]) + struct.pack(">HHHHII", 1, 1, 0, 1, offset, len(payload)),
        )
        return _full(b"meta", 0, 0, hdlr + pitm + iloc + iinf + iprp)

    head = ftyp + meta(0)
    head = ftyp + meta(len(head) + 8)
    return head + _box(b"mdat", payload)


WORKER = r"""
import json, os, sys, time
from click.testing import CliRunner
from imgpipe.cli import main

options, out_dir = sys.argv[1], sys.argv[2]
runner = CliRunner()
for line in sys.stdin:
    path = line.strip()
    out = os.path.join(out_dir, os.path.basename(path) + ".out")
    print(json.dumps({"start": path}), flush=True)
    started = time.monotonic()
    result = runner.invoke(main, ["optimize", options, path, "-o", out])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    print(json.dumps({"done": path, "exit": result.exit_code, "stderr": result.stderr,
                      "crashed": repr(result.exception) if crashed else None,
                      "output": os.path.exists(out), "seconds": time.monotonic() - started}),
          flush=True)
"""

# Runs argv as its only child; prints that child's peak RSS (KB on Linux) last, on stderr.
WRAPPER = r"""
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(f"peak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def peak_mb(stderr: str) -> float:
    line = [x for x in stderr.splitlines() if x.startswith("peak-rss-kb ")][-1]
    return int(line.split()[1]) / 1024


def corpus(vips, seed: int = 18, per_kind: int = 40) -> list[Case]:
    return (
        mutated(vips, seed, per_kind)
        + degenerate(vips)
        + frame_bombs(vips)
        + svgs(vips)
        + [Case("heic", "iphone.heic", heic_without_decoder())]
    )
