"""Butteraugli distance in numpy: what `butteraugli_main A.png B.png --pnorm 3` prints.

The algorithm and every constant are libjxl's butteraugli (lib/jxl/butteraugli/butteraugli.cc
and the p-norm of lib/extras/metrics.cc, JPEG XL project, BSD-3-Clause; butteraugli by Jyrki
Alakuijala), as built into the libjxl 0.7 tools. This is an independent, vectorised
re-implementation: scipy's 1-D correlations do the blurs, numpy the rest, in float32.

Steps (one pass at full size, one at half size mixed in):
- opsin dynamics: linear sRGB x the viewing intensity (80 nits) -> cone-like mixes, each scaled
  by the gamma slope of its blurred (sigma 1.2) surroundings -> X (red-green), Y, B planes;
- frequency separation into LF (blur sigma 7.16), MF (3.22), HF (1.56) and the rest (UHF),
  with the dead zones, clamps and red-green suppression butteraugli applies per band;
- differences: Malta line filters (16 directions, 9 taps; 5 taps for the lower bands) on UHF,
  HF and MF, asymmetric squared HF differences, squared MF and LF differences;
- masking: the reference's HF+UHF activity, compressed, blurred (sigma 2.7) and eroded (the
  mean of the 3 smallest of 9 samples 3 px apart) lowers the weight of AC and DC errors;
- the diffmap is the square root of the masked sum; the half-size image's diffmap is mixed
  in (x0.5, the full one x0.85); the score is libjxl's 3-norm: the mean of the 3-, 6- and
  12-norms of the diffmap. The maximum is the first number butteraugli_main prints.

Simplified against libjxl: log2 is numpy's, not libjxl's fast polynomial; sums run in another
order (both far below 0.1%). Inputs are 8-bit sRGB without alpha (an alpha band is refused:
butteraugli_main blends it on black and white, we do not), at least 8x8 pixels (butteraugli_main
pads smaller images; we refuse them). butteraugli_main's defaults: intensity target 80 nits,
hf_asymmetry and xmul 1; it decodes the PNGs to linear sRGB with the exact sRGB curve.

Accuracy (bench/bench_butteraugli.py, 162 encodes of calibration photos at 320-1200 px): the
3-norm is 1.5% above butteraugli_main's on average (sd 0.4%, worst 2.3%), correlation 0.9999.
Where the bias lives (butteraugli_main's diffmap read back from its --distmap heat map):
low-frequency (DC) errors and the masking field agree to 0.01%, errors on flat areas to 0.3%;
the Malta filters of the Y channel come out 2-4% high where the reference has random fine
texture. Every constant and formula checked against the 0.7 binary agrees (its global scale
is 1 / (17.8 x 0.79079917404), between the two libjxl sources read); the cause is not found.
"""

from __future__ import annotations

import numpy as np
import pyvips
from scipy import ndimage

F32 = np.float32
INTENSITY_TARGET = 80.0  # butteraugli_main's default viewing conditions, nits


class _Bands:
    """One image's frequency bands, at one resolution."""

    def __init__(self, linear: np.ndarray) -> None:
        self.lf, self.mf, self.hf, self.uhf = _separate(_opsin(linear))


def distance(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """butteraugli_main's "3-norm" of `distorted` against `reference` (8-bit sRGB, RGB)."""
    return scores(reference, distorted)[1]


def scores(reference: pyvips.Image, distorted: pyvips.Image) -> tuple[float, float]:
    """(max distance, 3-norm) as butteraugli_main prints them."""
    if (reference.width, reference.height) != (distorted.width, distorted.height):
        raise ValueError(
            "butteraugli compares images of the same size, got "
            f"{reference.width}x{reference.height} and {distorted.width}x{distorted.height}; "
            "resize the distorted image to the reference's"
        )
    dmap = diffmap(_linear(reference), _linear(distorted))
    return float(dmap.max()), pnorm3(dmap)


def diffmap(ref: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """The per-pixel distance of two linear-light (H, W, 3) float32 images."""
    full = _diffmap_one(ref, dist)
    sub_ref, sub_dist = _half(ref), _half(dist)
    if min(sub_ref.shape[:2]) < 8:
        return full
    sub = _diffmap_one(sub_ref, sub_dist)
    up = np.repeat(np.repeat(sub, 2, axis=0), 2, axis=1)[: full.shape[0], : full.shape[1]]
    return full * F32(1.0 - 0.3 * 0.5) + F32(0.5) * up


def pnorm3(dmap: np.ndarray) -> float:
    """libjxl's p-norm for p = 3: the mean of the 3-, 6- and 12-norms."""
    d3 = dmap.astype(np.float64) ** 3
    d6 = d3 * d3
    return float((d3.mean() ** (1 / 3) + d6.mean() ** (1 / 6) + (d6 * d6).mean() ** (1 / 12)) / 3)


def _linear(image: pyvips.Image) -> np.ndarray:
    if image.bands != 3 or image.format != "uchar":
        raise ValueError(
            "butteraugli needs 8-bit RGB without alpha, got "
            f"{image.bands} bands of {image.format}; flatten alpha and cast to uchar first"
        )
    if image.width < 8 or image.height < 8:
        raise ValueError(
            f"butteraugli needs at least 8x8 pixels, got {image.width}x{image.height}; "
            "score a bigger rendition (butteraugli_main pads small images, this does not)"
        )
    v = np.arange(256, dtype=np.float64) / 255
    lut = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(F32)
    return lut[image.numpy()]


def _half(rgb: np.ndarray) -> np.ndarray:
    """2x2 box average; an odd last row or column averages what it has."""
    h, w = rgb.shape[:2]
    p = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) * F32(0.25)


# --- blurs ----------------------------------------------------------------------------------


def _kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(2.25 * sigma))
    i = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * i * i / (sigma * sigma)).astype(F32)


_KERNELS: dict[float, np.ndarray] = {}


def _blur(planes: np.ndarray, sigma: float) -> np.ndarray:
    """Butteraugli's truncated Gaussian (2.25 sigma) of one (H, W) plane or a (C, H, W) stack.
    At the borders the taps that fall outside are dropped and the rest renormalised; a 5-tap
    kernel mirrors the image instead (libjxl's separable 5x5 convolution)."""
    k = _KERNELS.get(sigma)
    if k is None:
        k = _KERNELS[sigma] = _kernel(sigma)
    if len(k) == 5:
        k = k / k.sum()
        out = ndimage.correlate1d(planes, k, axis=-1, mode="reflect")
        return ndimage.correlate1d(out, k, axis=-2, mode="reflect")
    h, w = planes.shape[-2:]
    out = ndimage.correlate1d(planes, k, axis=-1, mode="constant")
    out = ndimage.correlate1d(out, k, axis=-2, mode="constant")
    out *= _norm(k, h)[:, None] * _norm(k, w)[None, :]
    return out


def _norm(k: np.ndarray, n: int) -> np.ndarray:
    """1 / the kernel weight that falls inside a row of n pixels, per pixel."""
    return (1 / np.convolve(np.ones(n, F32), k)[len(k) // 2 : len(k) // 2 + n]).astype(F32)


# --- opsin dynamics and frequency bands --------------------------------------------------------

_MIX = np.array(
    [
        [0.29956550340058319, 0.63373087833825936, 0.077705617820981968],
        [0.22158691104574774, 0.69391388044116142, 0.0987313588422],
        [0.02, 0.02, 0.20480129041026129],
    ],
    dtype=F32,
)
_MIX_BIAS = np.array([1.7557483643287353, 1.7557483643287353, 12.226454707163354], dtype=F32)


def _opsin(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) X, Y, B planes from linear (H, W, 3) sRGB."""
    planes = rgb.transpose(2, 0, 1) * F32(INTENSITY_TARGET)
    blurred = _blur(planes, 1.2)
    pre = np.einsum("ij,jhw->ihw", _MIX, blurred) + _MIX_BIAS[:, None, None]
    pre = np.maximum(pre, _MIX_BIAS[:, None, None])
    pre = np.maximum(pre, F32(1e-4))
    gamma = F32(19.245013259874995 * np.log(2)) * np.log2(pre + F32(9.9710635769299145)) + F32(
        -23.16046239805755
    )
    sensitivity = np.maximum(gamma / pre, F32(1e-4))
    cur = (np.einsum("ij,jhw->ihw", _MIX, planes) + _MIX_BIAS[:, None, None]) * sensitivity
    cur = np.maximum(cur, _MIX_BIAS[:, None, None])
    return np.stack([cur[0] - cur[1], cur[0] + cur[1], cur[2]]).astype(F32)


def _remove_range(x: np.ndarray, w: float) -> np.ndarray:
    """Shrink towards zero by w (a dead zone)."""
    return np.sign(x) * np.maximum(np.abs(x) - F32(w), F32(0))


def _amplify_range(x: np.ndarray, w: float) -> np.ndarray:
    """Double inside [-w, w], shift by w outside."""
    return np.where(np.abs(x) > w, x + np.sign(x) * F32(w), x + x)


def _clamp(x: np.ndarray, maxval: float) -> np.ndarray:
    """Beyond +-maxval, grow at 0.724x."""
    mul = F32(0.724216145665)
    m = F32(maxval)
    return np.where(x >= m, (x - m) * mul + m, np.where(x < -m, (x + m) * mul - m, x))


def _separate(
    xyb: np.ndarray,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    lf = _blur(xyb, 7.15593339443)
    mf = [xyb[i] - lf[i] for i in range(3)]
    hf = [mf[0], mf[1]]
    mf = list(_blur(np.stack(mf), 3.22489901262))
    hf = [hf[0] - mf[0], hf[1] - mf[1]]
    mf[0] = _remove_range(mf[0], 0.29)
    mf[1] = _amplify_range(mf[1], 0.1)
    s = F32(0.653020556257)
    yw = F32(46.0)
    hf[0] = hf[0] * (s + (F32(1) - s) * yw / (hf[1] * hf[1] + yw))
    uhf = list(hf)
    hf = list(_blur(np.stack(hf), 1.56416327805))
    uhf[0] = _remove_range(uhf[0] - hf[0], 0.04)
    hf[0] = _remove_range(hf[0], 1.5)
    hf[1] = _clamp(hf[1], 28.4691806922)
    uhf[1] = _clamp(uhf[1] - hf[1], 5.19175294647) * F32(2.69313763794)
    hf[1] = _amplify_range(hf[1] * F32(2.155), 0.132)
    # Low frequencies to "vals", where squared differences are comparable.
    lf_vals = np.stack(
        [
            lf[0] * F32(32.2217497012),
            lf[1] * F32(13.7697791434),
            (lf[2] + F32(-0.362267051518) * lf[1]) * F32(47.504615728),
        ]
    )
    return lf_vals, mf, hf, uhf


# --- differences -----------------------------------------------------------------------------

# The Malta line filters: per direction, the (dy, dx) of its taps (the centre included).
_MALTA_ONCE = [
    [(0, d) for d in range(-4, 5)],
    [(d, 0) for d in range(-4, 5)],
    [(-3, -3), (-2, -2), (-1, -1), (0, 0), (1, 1), (2, 2), (3, 3)],
    [(-3, 3), (-2, 2), (-1, 1), (0, 0), (1, -1), (2, -2), (3, -3)],
    [(-3, -2), (-2, -1), (-1, -1), (0, 0), (1, 1), (2, 1), (3, 2)],
    [(-3, 2), (-2, 1), (-1, 1), (0, 0), (1, -1), (2, -1), (3, -2)],
    [(-2, -3), (-1, -2), (-1, -1), (0, 0), (1, 1), (1, 2), (2, 3)],
    [(-2, 3), (-1, 2), (-1, 1), (0, 0), (1, -1), (1, -2), (2, -3)],
]
# libjxl lists these four twice (the 16 lines are 12 distinct ones): they count double.
_MALTA_TWICE = [
    [(-4, 1), (-3, 1), (-2, 1), (-1, 0), (0, 0), (1, 0), (2, -1), (3, -1), (4, -1)],
    [(-4, -1), (-3, -1), (-2, -1), (-1, 0), (0, 0), (1, 0), (2, 1), (3, 1), (4, 1)],
    [(-1, -4), (-1, -3), (-1, -2), (0, -1), (0, 0), (0, 1), (1, 2), (1, 3), (1, 4)],
    [(1, -4), (1, -3), (1, -2), (0, -1), (0, 0), (0, 1), (-1, 2), (-1, 3), (-1, 4)],
]
_MALTA = [(line, 1) for line in _MALTA_ONCE] + [(line, 2) for line in _MALTA_TWICE]
_MALTA_LF = [
    (line, 1)
    for line in [
        [(0, -4), (0, -2), (0, 0), (0, 2), (0, 4)],
        [(-4, 0), (-2, 0), (0, 0), (2, 0), (4, 0)],
        [(-3, -3), (-2, -2), (0, 0), (2, 2), (3, 3)],
        [(-3, 3), (-2, 2), (0, 0), (2, -2), (3, -3)],
        [(-4, 1), (-2, 1), (0, 0), (2, -1), (4, -1)],
        [(-4, -1), (-2, -1), (0, 0), (2, 1), (4, 1)],
        [(-1, -4), (-1, -2), (0, 0), (1, 2), (1, 4)],
        [(1, -4), (1, -2), (0, 0), (-1, 2), (-1, 4)],
        [(-3, -2), (-2, -1), (0, 0), (2, 1), (3, 2)],
        [(-3, 2), (-2, 1), (0, 0), (2, -1), (3, -2)],
        [(-2, -3), (-1, -2), (0, 0), (1, 2), (2, 3)],
        [(-2, 3), (-1, 2), (0, 0), (1, -2), (2, -3)],
        [(2, -4), (1, -2), (0, 0), (-1, 2), (-2, 4)],
        [(-2, -4), (-1, -2), (0, 0), (1, 2), (2, 4)],
        [(-4, -2), (-2, -1), (0, 0), (2, 1), (4, 2)],
        [(-4, 2), (-2, 1), (0, 0), (2, -1), (4, -2)],
    ]
]


def _malta(ref: np.ndarray, dist: np.ndarray, weight: float, norm1: float, lf: bool) -> np.ndarray:
    """Sum over line filters of (the line's sum of weighted differences) squared."""
    mulli = 0.611612573796 if lf else 0.39905817637
    taps = 2 * 3.75 + 1
    norm_gt = F32(mulli * np.sqrt(0.5 * weight) / taps * norm1)
    norm_lt = F32(mulli * np.sqrt(0.33 * weight) / taps * norm1)
    absval = F32(0.5) * (np.abs(ref) + np.abs(dist))
    diff = ref - dist
    denom = F32(norm1) + absval
    a = np.abs(ref)
    small, big = F32(0.55) * a, F32(1.05) * a
    # How far the distorted value falls outside [0.55, 1.05] x the reference's, on its side.
    signed = np.where(ref < 0, -dist, dist)
    off = np.where(signed < small, small - signed, np.where(signed > big, signed - big, F32(0)))
    d = (norm_gt * diff + np.where(diff < 0, -off, off) * norm_lt) / denom
    h, w = d.shape
    pad = np.pad(d, 4)
    out = np.zeros_like(d)
    acc = np.empty_like(d)
    for line, count in _MALTA_LF if lf else _MALTA:
        acc.fill(0)
        for dy, dx in line:
            acc += pad[4 + dy : 4 + dy + h, 4 + dx : 4 + dx + w]
        acc *= acc
        out += acc if count == 1 else acc * F32(count)
    return out


def _l2_asymmetric(ref: np.ndarray, dist: np.ndarray, weight: float) -> np.ndarray:
    diff = ref - dist
    a = np.abs(ref)
    small = F32(0.4) * a
    signed = np.where(ref < 0, -dist, dist)
    v = np.where(signed < small, small - signed, np.where(signed > a, signed - a, F32(0)))
    return F32(0.8 * weight) * (diff * diff + v * v)


def _erode(blurred: np.ndarray) -> np.ndarray:
    """0.45, 0.3, 0.25 x the 3 smallest of: the pixel, twice it (twice), and its 8 neighbours
    3 px away (those inside the image)."""
    h, w = blurred.shape
    pad = np.pad(blurred, 3, constant_values=np.inf)
    m0 = blurred.copy()
    m1 = blurred * F32(2)
    m2 = m1.copy()
    for dy in (-3, 0, 3):
        for dx in (-3, 0, 3):
            if dy == dx == 0:
                continue
            v = pad[3 + dy : 3 + dy + h, 3 + dx : 3 + dx + w]
            m2 = np.where(v < m1, m1, np.minimum(m2, v))
            m1 = np.where(v < m0, m0, np.minimum(m1, v))
            m0 = np.minimum(m0, v)
    return F32(0.45) * m0 + F32(0.3) * m1 + F32(0.25) * m2


def _activity(p: _Bands) -> np.ndarray:
    x = (p.uhf[0] + p.hf[0]) * F32(2.5)
    y = p.uhf[1] * F32(0.4) + p.hf[1] * F32(0.4)
    mul, bias = F32(6.19424080439), F32(6.19424080439 * 12.61050594197)
    return np.sqrt(mul * np.sqrt(x * x + y * y) + bias) - np.sqrt(bias)


_GLOBAL_SCALE = 0.0710417702794075  # 1 / (17.8 x 0.79079917404), as the 0.7 binary has it


def _mask_weight(val: np.ndarray, offset: float, scaler: float, mul: float) -> np.ndarray:
    r = F32(_GLOBAL_SCALE) * (F32(1) + F32(mul) / (F32(scaler) * val + F32(offset)))
    return r * r


def _diffmap_one(ref_rgb: np.ndarray, dist_rgb: np.ndarray) -> np.ndarray:
    p0, p1 = _Bands(ref_rgb), _Bands(dist_rgb)
    # AC (the masked high and middle frequencies) per channel: Malta line filters on UHF (9
    # taps), HF and MF (5 taps), weight and norm per band and channel; then squared HF (with
    # asymmetry: lost contrast counts extra) and MF differences.
    ac_x, ac_y = (_ac(p0, p1, channel, *_AC_WEIGHTS[channel]) for channel in (0, 1))
    ac_b = F32(16.2176043152) * (p0.mf[2] - p1.mf[2]) ** 2
    # DC: squared low-frequency differences in "vals".
    dc = ((p0.lf - p1.lf) ** 2 * _LF_WEIGHTS[:, None, None]).sum(axis=0)
    # Masking: the reference's activity decides; a change of activity is an error too.
    blurred0, blurred1 = _blur(np.stack([_activity(p0), _activity(p1)]), 2.7)
    ac_y += F32(10.0) * (blurred0 - blurred1) ** 2
    mask = _erode(blurred0)
    mask_ac = _mask_weight(mask, 0.829591754942, 0.451936922203, 2.5485944793)
    mask_dc = _mask_weight(mask, 0.20025578522, 3.87449418804, 0.505054525019)
    out: np.ndarray = np.sqrt(mask_dc * dc + mask_ac * (ac_x + ac_y + ac_b))
    return out


# Per channel (X, Y): Malta weight and norm on UHF, HF and MF; asymmetric HF; squared MF.
_AC_WEIGHTS = (
    (173.5, 5.0, 6923.99476109, 8051.15833247, 8246.75321353, 1009002.70582, 400.0, 2150.0),
    (
        1.10039032555,
        71.7800275169,
        18.7237414387,
        4498534.45232,
        37.0819870399,
        130262059.556,
        1.50815703118,
        10.6195433239,
    ),
)


def _ac(p0: _Bands, p1: _Bands, c: int, *w: float) -> np.ndarray:
    """One channel's AC differences, summed in butteraugli's order."""
    out: np.ndarray = (
        _malta(p0.uhf[c], p1.uhf[c], w[0], w[1], lf=False)
        + _malta(p0.hf[c], p1.hf[c], w[2], w[3], lf=True)
        + _malta(p0.mf[c], p1.mf[c], w[4], w[5], lf=True)
        + _l2_asymmetric(p0.hf[c], p1.hf[c], w[6])
        + F32(w[7]) * (p0.mf[c] - p1.mf[c]) ** 2
    )
    return out


_LF_WEIGHTS = np.array([29.2353797994, 0.844626970982, 0.703646627719], dtype=F32)
