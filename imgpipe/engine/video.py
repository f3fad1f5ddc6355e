"""Animations as video: WebM (VP9) and MP4 (H.264) through PyAV, the only importer of `av`.

PyAV's wheels carry FFmpeg with libvpx and libx264, so no system ffmpeg is needed. Videos are
silent, yuv420p (what every browser decodes), even-sized (4:2:0 chroma covers 2x2 pixels),
timed by the animation's own delays (a 1/1000 s time base, each frame at the sum of the delays
before it) and start with a keyframe, so `<video loop>` restarts cleanly.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction

import av
import pyvips

from ..errors import ImageError, Problem
from . import clip
from .encode import TARGETS
from .failure import fail

MS = Fraction(1, 1000)

# A quality preset is met like a still's: the highest constant-quality factor (lower is better;
# VP9's runs 0..63, x264's 0..51) within CRF_RANGE whose encoding of a clip meets the preset's
# perceptual target (encode.TARGETS) on sample frames (clip.py). CRF is where that search
# starts (what a panned photo clip needed) and what an animation too small to score gets;
# CRF_SLOPE is the score gained per CRF step near the targets, measured on that clip.
CRF = {"webm": {"low": 41, "medium": 33, "high": 25}, "h264": {"low": 28, "medium": 23, "high": 19}}
CRF_RANGE = {"webm": (10, 56), "h264": (8, 42)}
CRF_SLOPE = {"webm": 0.35, "h264": 1.0}
# quality=N (1..100) maps linearly onto the CRF range, N=75 landing near medium.
CRF_SCALE = {"webm": (63, 0.39), "h264": (51, 0.37)}

CONTAINERS = {"webm": "webm", "h264": "mp4"}


def h264_encoder() -> str:
    """libx264 when this PyAV build has it, else whatever H.264 encoder it does have."""
    available = av.codecs_available
    for name in ("libx264", "libopenh264", "h264"):
        if name in available:
            return name
    return "libx264"


def _settings(fmt: str, crf: int) -> tuple[str, dict[str, str], dict[str, str]]:
    """(codec, codec options, container options)."""
    if fmt == "webm":
        # b=0 with crf: pure constant quality. cpu-used 4 of 0..5 ("good" deadline): close to
        # the smallest files at a fraction of the time; row-mt uses both cores on one video.
        return (
            "libvpx-vp9",
            {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
            # bitexact: no random segment ID or muxer date, so the same input gives the same file
            {"fflags": "+bitexact"},
        )
    codec = h264_encoder()
    if codec != "libx264":  # openh264 knows no CRF: a bitrate is the best it takes
        return codec, {"b": "1M"}, {"movflags": "+faststart"}
    # bf=0: no B-frames, so every frame's presentation time is its decode time and the MP4's
    # duration is exactly the sum of the delays. faststart moves the index to the front so
    # playback starts before the download ends.
    return codec, {"crf": str(crf), "preset": "medium", "bf": "0"}, {"movflags": "+faststart"}


def crf_for(fmt: str, quality: str | int) -> tuple[int, tuple[Problem, ...]]:
    if quality == "lossless":
        return CRF[fmt]["high"], (
            Problem(
                "lossless-video",
                "video is never lossless in a browser-friendly form; encoded at quality=high",
            ),
        )
    if isinstance(quality, int):
        top, step = CRF_SCALE[fmt]
        return max(0, min(top, round(top - quality * step))), ()
    return CRF[fmt][quality], ()


def encode(
    frames: Sequence[pyvips.Image],
    delays: Sequence[int],
    fmt: str,
    quality: str | int,
    deadline: float,
    name: str,
) -> tuple[bytes, int, int, int, tuple[Problem, ...], float | None]:
    """Encode opaque sRGB frames; returns (bytes, width, height, crf, warnings, score on the
    clip's sample frames)."""
    crf, warnings = crf_for(fmt, quality)
    frames = [_even(frame) for frame in frames]
    width, height = frames[0].width, frames[0].height
    score = None
    length = clip.clip_length(width, height, len(frames))
    # openh264 knows no CRF (_settings): nothing to search.
    searches = fmt == "webm" or h264_encoder() == "libx264"
    if isinstance(quality, str) and searches and clip.scorable(width, height, length):
        part, timing = frames[:length], delays[:length]
        low, high = CRF_RANGE[fmt]
        # The search raises a setting to raise the score: it works on -crf.
        found = clip.search(
            part,
            lambda setting: _encode(part, timing, fmt, -setting, deadline, name),
            _decode,
            fmt,
            TARGETS["high" if quality == "lossless" else quality],
            (-high, -low, CRF_SLOPE[fmt]),
            -crf,
            deadline,
        )
        if found.quality is not None:
            crf, score = -found.quality, found.score
    return _encode(frames, delays, fmt, crf, deadline, name), width, height, crf, warnings, score


def _encode(
    frames: Sequence[pyvips.Image],
    delays: Sequence[int],
    fmt: str,
    crf: int,
    deadline: float,
    name: str,
) -> bytes:
    codec, options, container_options = _settings(fmt, crf)
    total = sum(delays)
    try:
        with tempfile.TemporaryDirectory(prefix="imgpipe-video-") as directory:
            # A file, not memory: faststart rewrites the MP4 by reopening it by name.
            path = os.path.join(directory, f"out.{CONTAINERS[fmt]}")
            with av.open(
                path, mode="w", format=CONTAINERS[fmt], options=container_options
            ) as container:
                rate = Fraction(len(frames) * 1000, total).limit_denominator(1000)
                stream = container.add_stream(codec, rate=rate, options=options)
                stream.width, stream.height = frames[0].width, frames[0].height
                stream.pix_fmt = "yuv420p"
                stream.time_base = MS
                stream.codec_context.time_base = MS
                _tag_bt709(stream.codec_context)
                durations: dict[int, int] = {}
                pts = 0
                for frame, delay in zip(frames, delays, strict=True):
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    durations[pts] = delay
                    _mux(container, stream.encode(_video_frame(frame, pts)), durations)
                    pts += delay
                _mux(container, stream.encode(None), durations)
            with open(path, "rb") as fh:
                return fh.read()
    except av.FFmpegError as error:
        raise _failed(name, fmt, codec, error) from None


def _decode(data: bytes, chosen: list[int]) -> list[pyvips.Image]:
    """Frames `chosen` of a video, back in sRGB as a browser shows them (BT.709, limited)."""
    found: list[pyvips.Image] = []
    with av.open(io.BytesIO(data)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index in chosen:
                rgb = frame.reformat(
                    format="rgb24", src_colorspace="ITU709", src_color_range="MPEG"
                ).to_ndarray()
                found.append(
                    pyvips.Image.new_from_memory(
                        rgb.tobytes(), frame.width, frame.height, 3, "uchar"
                    )
                )
    return found


def _even(image: pyvips.Image) -> pyvips.Image:
    """Cut the odd last column or row (a 1-pixel side is doubled instead)."""
    width, height = image.width - image.width % 2, image.height - image.height % 2
    if (width, height) == (image.width, image.height):
        return image
    if width == 0 or height == 0:
        return image.embed(0, 0, max(2, width), max(2, height), extend="copy")
    return image.crop(0, 0, width, height)


def _video_frame(image: pyvips.Image, pts: int) -> av.VideoFrame:
    # from_bytes takes packed RGBA, not RGB: the frames are opaque, so a constant alpha.
    rgba = av.VideoFrame.from_bytes(
        bytes(image.bandjoin(255).write_to_memory()), image.width, image.height, format="rgba"
    )
    # BT.709 with limited range, and tagged so: what browsers assume for web video, so the
    # colours match the GIF and the poster.
    frame = rgba.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    frame.pts = pts
    frame.time_base = MS
    return frame


def _tag_bt709(context) -> None:
    context.color_primaries = 1  # BT.709
    context.color_trc = 1
    context.colorspace = 1
    context.color_range = 1  # MPEG (limited)


def _mux(container, packets, durations: dict[int, int]) -> None:
    for packet in packets:
        # The muxer knows every frame's start but not how long the last one lasts: without
        # durations the video would end one frame early.
        if packet.pts in durations:
            packet.duration = durations[packet.pts]
        container.mux(packet)


def _failed(name: str, fmt: str, codec: str, error: Exception) -> ImageError:
    return fail(
        "encode-failed",
        name,
        f"{codec} could not encode the {fmt} video ({error})",
        f"a {fmt} video",
        "report this file to imgpipe",
        "encode",
    )
