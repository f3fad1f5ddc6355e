"""Lossless optimisers: fewer bytes, the very same pixels.

- PNG: oxipng (tries row filters, reduces colour type and bit depth, recompresses with
  libdeflate) after libvips wrote the PNG fast; oxipng redoes the compression anyway.
- JPEG: mozjpeg's lossless transcoding (optimised Huffman tables, progressive scans), which
  keeps every DCT coefficient, so the decoded pixels are bit-identical.

Both strip metadata unless told to keep some (DESIGN §4: no EXIF, no GPS position leaks).
"""

from __future__ import annotations

import math
import subprocess
import sys

import oxipng

# oxipng's own default: a few filter strategies, one deflate pass. Higher levels try more
# combinations for ~1% more, at several times the time.
OXIPNG_LEVEL = 2


def optimise_png(data: bytes, seconds: float = math.inf, keep: list[bytes] | None = None) -> bytes:
    """`data` (a PNG) losslessly smaller; the input itself if oxipng cannot do better in time.
    Every chunk but the pixels' own and those named in `keep` (b"iCCP"...) is stripped."""
    timeout = None if math.isinf(seconds) else max(1, math.ceil(seconds))
    try:
        out = oxipng.optimize_from_memory(
            data,
            level=OXIPNG_LEVEL,
            strip=oxipng.StripChunks.keep(keep) if keep else oxipng.StripChunks.all(),
            optimize_alpha=False,
            timeout=timeout,
        )
    except oxipng.PngError:
        return data
    return out if len(out) < len(data) else data


# mozjpeg's libjpeg calls exit() on some fatal errors instead of returning one: a JPEG whose
# (mutated) Huffman tables decode to DCT coefficients out of range reads fine, in libvips as
# here, but ends the whole process when mozjpeg re-encodes them ("DCT coefficient out of
# range", exit status 1: a build would stop with no manifest, the server would die). So it
# runs in a process of its own, which costs ~40 ms once per kept JPEG source.
_MOZJPEG_CHILD = """
import sys, mozjpeg_lossless_optimization as m
try:
    out = m.optimize(sys.stdin.buffer.read(), copy=m.COPY_MARKERS.NONE)
except ValueError:
    sys.exit(3)
sys.stdout.buffer.write(out)
"""
MOZJPEG_SECONDS = 120  # far beyond the ~1 s of a 50 MB JPEG: a child that hangs is stopped


def optimise_jpeg(data: bytes) -> bytes | None:
    """`data` (a JPEG) recoded losslessly by mozjpeg, or None when mozjpeg cannot read it.

    No marker is copied (EXIF, XMP, ICC and comments go; libjpeg writes JFIF/Adobe itself as
    the colour space needs). None is an answer, not an error: libvips decodes files mozjpeg
    refuses, valid ones (arithmetic-coded and lossless JPEGs, which mozjpeg is built without
    and browsers do not show either) and damaged ones alike (libjpeg passes over corrupt
    entropy-coded data with a warning). Either way the source's bytes are no rendition: the
    caller encodes the decoded pixels instead."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MOZJPEG_CHILD],
            input=data,
            capture_output=True,
            timeout=MOZJPEG_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout else None
