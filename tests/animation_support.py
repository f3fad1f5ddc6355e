"""Real animations for the animation, video and browser tests (helpers only; no tests here).

Frames are made with pyvips and saved by libvips' own GIF (cgif) and WebP encoders, so the
sources are what an editor or a screen recorder would produce: several frame delays,
transparency, a NETSCAPE loop extension or none.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "example-site/images/photos/dune.jpg"

# Distinct, saturated colours: each frame is told apart by its colour after any resize.
COLOURS = ((230, 30, 30), (30, 200, 40), (40, 60, 230), (240, 200, 20), (200, 40, 220))
DELAYS = (40, 70, 150, 30)  # ms; GIF stores centiseconds, so multiples of 10 survive exactly


def solid(width: int, height: int, rgb, alpha: int | None = None):
    bands = list(rgb) + ([alpha] if alpha is not None else [])
    return (
        pyvips.Image.black(width, height, bands=len(bands))
        .new_from_image(bands)
        .cast("uchar")
        .copy(interpretation="srgb")
    )


def coloured_frames(width: int, height: int, count: int, transparent: bool = False):
    """Frame i is COLOURS[i] with a marker square at a spot that moves right frame by frame,
    and (with `transparent`) a fully transparent left column band."""
    frames = []
    for i in range(count):
        frame = solid(width, height, COLOURS[i % len(COLOURS)], 255 if transparent else None)
        marker = solid(width // 8, height // 4, (255, 255, 255), 255 if transparent else None)
        frame = frame.insert(marker, (i * width // (count + 1)) % (width - width // 8), height // 3)
        if transparent:
            clear = solid(width // 5, height, (0, 0, 0), 0)
            frame = frame.insert(clear, 0, 0)
        frames.append(frame)
    return frames


def photo_frames(count: int = 16, width: int = 160, height: int = 120, step: int = 3):
    """Frames cut from a photo with a slight pan: what screen-recorded GIFs look like."""
    photo = pyvips.Image.new_from_file(str(PHOTO)).thumbnail_image(width * 2)
    return [photo.crop(i * step, 10, width, height).copy_memory() for i in range(count)]


def strip_of(frames, delays, loop: int):
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", list(delays))
    strip.set_type(pyvips.GValue.gint_type, "loop", loop)
    return strip


def gif(frames, delays=DELAYS, loop: int = 0) -> bytes:
    """An animated GIF. loop=1 (play once) writes no NETSCAPE extension at all."""
    return strip_of(frames, delays, loop).gifsave_buffer(effort=7)


def webp(frames, delays=DELAYS, loop: int = 0) -> bytes:
    return strip_of(frames, delays, loop).webpsave_buffer(lossless=True)


@dataclass(frozen=True)
class Animation:
    pages: int
    delays: tuple[int, ...]
    loop: int
    width: int
    height: int  # of one frame
    frames: tuple  # pyvips images, one per frame


def read_back(data: bytes) -> Animation:
    animated = data[:3] == b"GIF" or data[8:12] == b"WEBP"
    image = pyvips.Image.new_from_buffer(data, "", **({"n": -1} if animated else {}))
    pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
    height = image.get("page-height") if image.get_typeof("page-height") else image.height
    delays = tuple(image.get("delay")) if image.get_typeof("delay") else ()
    loop = image.get("loop") if image.get_typeof("loop") else 0
    frames = tuple(image.crop(0, i * height, image.width, height) for i in range(pages))
    return Animation(pages, delays, loop, image.width, height, frames)


@dataclass(frozen=True)
class Video:
    codec: str
    frames: int
    width: int
    height: int
    starts_ms: tuple[float, ...]  # presentation time of each frame
    duration_ms: float  # of the container
    pix_fmt: str


def decode_video(data: bytes) -> Video:
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        return Video(
            stream.codec_context.name,
            len(decoded),
            decoded[0].width,
            decoded[0].height,
            tuple(f.time * 1000 for f in decoded),
            container.duration / 1000,
            decoded[0].format.name,
        )


def video_frames(data: bytes) -> list:
    """Every frame of a video as an sRGB pyvips image, as a browser shows it (BT.709)."""
    av = pytest.importorskip("av")
    frames = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(container.streams.video[0]):
            rgb = frame.reformat(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")
            pixels = rgb.to_ndarray()
            frames.append(
                pyvips.Image.new_from_memory(
                    pixels.tobytes(), frame.width, frame.height, 3, "uchar"
                )
            )
    return frames


def colour_at(image, x: int, y: int) -> tuple[int, ...]:
    return tuple(round(v) for v in image.getpoint(x, y))


def near(a, b, tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))
