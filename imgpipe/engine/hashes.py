"""ThumbHash and BlurHash strings of a small sRGB image, for pages that draw the placeholder
with a script (the hashes are ~25-35 characters; the LQIP data URI needs no script).

BlurHash comes from the `blurhash` package. ThumbHash is encoded here, following the
reference encoder (github.com/evanw/thumbhash, `rgbaToThumbHash`): its Python ports need
Pillow; tests decode our strings with one of them, so the two implementations check each
other.
"""

from __future__ import annotations

import base64
import math

import blurhash
import numpy as np

THUMBHASH_SIDE = 32  # pixels of the longer side the hash is computed on (at most 100)
BLURHASH_COMPONENTS = (4, 3)  # along the longer side, the shorter side


def thumbhash(rgba: np.ndarray) -> str:
    """The base64 ThumbHash of an 8-bit RGBA image (height x width x 4, at most 100 a side)."""
    h, w = rgba.shape[:2]
    pixels = rgba.reshape(-1, 4).astype(np.float64) / 255
    alpha = pixels[:, 3]
    total = alpha.sum()
    average = (pixels[:, :3] * alpha[:, None]).sum(axis=0) / total if total else np.zeros(3)
    has_alpha = total < w * h
    limit = 5 if has_alpha else 7  # fewer luminance terms when alpha takes room
    lx = max(1, _round(limit * w / max(w, h)))
    ly = max(1, _round(limit * h / max(w, h)))
    # Composite over the average colour, then to luminance, yellow-blue, red-green.
    rgb = average * (1 - alpha[:, None]) + pixels[:, :3] * alpha[:, None]
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    channels = [((r + g + b) / 3, max(3, lx), max(3, ly)), ((r + g) / 2 - b, 3, 3), (r - g, 3, 3)]
    if has_alpha:
        channels.append((alpha, 5, 5))
    encoded = [_channel(values.reshape(h, w), nx, ny) for values, nx, ny in channels]
    (l_dc, l_ac, l_scale), (p_dc, p_ac, p_scale), (q_dc, q_ac, q_scale) = encoded[:3]
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | _round(31.5 + 31.5 * p_dc) << 6
        | _round(31.5 + 31.5 * q_dc) << 12
        | _round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    header16 = (
        (ly if landscape else lx)
        | _round(63 * p_scale) << 3
        | _round(63 * q_scale) << 9
        | int(landscape) << 15
    )
    out = [header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        a_dc, _, a_scale = encoded[3]
        out.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
    factors = [f for _, ac, _ in encoded for f in ac]
    nibbles = [_round(15 * f) for f in factors] + [0] * (len(factors) % 2)
    out.extend(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True))
    return base64.b64encode(bytes(out)).decode("ascii")


def _channel(values: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
    """DC term, AC terms normalised to 0..1, and their scale (the reference's encodeChannel)."""
    h, w = values.shape
    dc, ac = 0.0, []
    for cy in range(ny):
        cx = 0
        while cx * ny < nx * (ny - cy):
            fx = np.cos(math.pi / w * cx * (np.arange(w) + 0.5))
            fy = np.cos(math.pi / h * cy * (np.arange(h) + 0.5))
            f = float(fy @ values @ fx) / (w * h)
            if cx or cy:
                ac.append(f)
            else:
                dc = f
            cx += 1
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # JavaScript's Math.round, as the reference encoder uses


def blur_hash(rgb: np.ndarray) -> str:
    """The BlurHash of an 8-bit RGB image (height x width x 3)."""
    h, w = rgb.shape[:2]
    long_side, short_side = BLURHASH_COMPONENTS
    x, y = (long_side, short_side) if w >= h else (short_side, long_side)
    return blurhash.encode(rgb.tolist(), components_x=x, components_y=y)
