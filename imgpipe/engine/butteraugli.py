"""Butteraugli distance in numpy: what `butteraugli_main A.png B.png --pnorm 3` prints.

The algorithm and every constant are libjxl's butteraugli (lib/jxl/butteraugli/butteraugli.cc
and the p-norm of lib/extras/metrics.cc, JPEG XL project, BSD-3-Clause; butteraugli by Jyrki
Alakuijala), as built into the libjxl 0.7 tools. This is an independent, vectorised
re-implementation: OpenCV's separable filter does the blurs, numpy the rest, in float32; the
Malta line filters are in malta.py. A Reference does the reference's half of the work once.

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

import cv2
import numpy as np
import pyvips

from . import malta

F32 = np.float32
INTENSITY_TARGET = 80.0  # butteraugli_main's default viewing conditions, nits
# OpenCV's own threads off, as libvips' (load.py): builds run renders side by side instead.
cv2.setNumThreads(1)


class Reference:
    """The reference's half of the work (its bands and masking field at both sizes), done
    once to compare several images with it."""

    def __init__(self, reference: pyvips.Image) -> None:
        self.width, self.height = reference.width, reference.height
        self._sides = _sides(_linear(reference))

    def scores(self, distorted: pyvips.Image) -> tuple[float, float]:
        """(max distance, 3-norm) of `distorted` as butteraugli_main prints them."""
        _same_size(self.width, self.height, distorted)
        dmap = _diffmap(self._sides, _linear(distorted))
        return float(dmap.max()), pnorm3(dmap)

    def distance(self, distorted: pyvips.Image) -> float:
        """butteraugli_main's "3-norm" of `distorted` against the reference."""
        return self.scores(distorted)[1]


def distance(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """butteraugli_main's "3-norm" of `distorted` against `reference` (8-bit sRGB, RGB)."""
    return scores(reference, distorted)[1]


def scores(reference: pyvips.Image, distorted: pyvips.Image) -> tuple[float, float]:
    """(max distance, 3-norm) as butteraugli_main prints them."""
    _same_size(reference.width, reference.height, distorted)
    return Reference(reference).scores(distorted)


def diffmap(ref: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """The per-pixel distance of two linear-light (H, W, 3) float32 images."""
    return _diffmap(_sides(_planes(ref)), _planes(dist))


def pnorm3(dmap: np.ndarray) -> float:
    """libjxl's p-norm for p = 3: the mean of the 3-, 6- and 12-norms."""
    d3 = dmap.astype(np.float64) ** 3
    d6 = d3 * d3
    return float((d3.mean() ** (1 / 3) + d6.mean() ** (1 / 6) + (d6 * d6).mean() ** (1 / 12)) / 3)


def _same_size(width: int, height: int, distorted: pyvips.Image) -> None:
    if (width, height) != (distorted.width, distorted.height):
        raise ValueError(
            "butteraugli compares images of the same size, got "
            f"{width}x{height} and {distorted.width}x{distorted.height}; "
            "resize the distorted image to the reference's"
        )


def _linear(image: pyvips.Image) -> np.ndarray:
    """(3, H, W) linear-light planes of an 8-bit sRGB image."""
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
    return _SRGB_TO_LINEAR[np.ascontiguousarray(image.numpy().transpose(2, 0, 1))]


_V = np.arange(256, dtype=np.float64) / 255
_SRGB_TO_LINEAR = np.where(_V <= 0.04045, _V / 12.92, ((_V + 0.055) / 1.055) ** 2.4).astype(F32)


def _planes(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) planes of an (H, W, 3) image."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=F32)


def _half(planes: np.ndarray) -> np.ndarray:
    """2x2 box average; an odd last row or column averages what it has."""
    h, w = planes.shape[1:]
    p = np.pad(planes, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    out = p[:, 0::2, 0::2] + p[:, 1::2, 0::2]
    out += p[:, 0::2, 1::2]
    out += p[:, 1::2, 1::2]
    out *= F32(0.25)
    return out


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
    mirror = len(k) == 5
    if mirror:
        k = k / k.sum()
    h, w = planes.shape[-2:]
    out = np.empty_like(planes)
    border = cv2.BORDER_REFLECT if mirror else cv2.BORDER_CONSTANT  # cba|abc, or zeros
    for plane, blurred in zip(planes.reshape(-1, h, w), out.reshape(-1, h, w), strict=True):
        cv2.sepFilter2D(plane, -1, k, k, dst=blurred, borderType=border)
    if not mirror:
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
    ]
)
_MIX_NITS = (_MIX * INTENSITY_TARGET).astype(F32)
_MIX_BIAS = np.array([1.7557483643287353, 1.7557483643287353, 12.226454707163354], dtype=F32)
_BIAS = _MIX_BIAS[:, None, None]


def _opsin(planes: np.ndarray) -> np.ndarray:
    """(3, H, W) X, Y, B planes from linear (3, H, W) sRGB. The mix is linear, so it is done
    before the blur (one mix instead of two)."""
    mixed = np.einsum("ij,jhw->ihw", _MIX_NITS, planes)
    pre = _blur(mixed, 1.2)
    np.maximum(pre, F32(0), out=pre)
    pre += _BIAS
    sensitivity = pre + F32(9.9710635769299145)
    np.log(sensitivity, out=sensitivity)
    sensitivity *= F32(19.245013259874995)
    sensitivity += F32(-23.16046239805755)
    np.divide(sensitivity, pre, out=pre)
    np.maximum(pre, F32(1e-4), out=pre)
    mixed += _BIAS
    mixed *= pre
    np.maximum(mixed, _BIAS, out=mixed)
    x = mixed[0] - mixed[1]
    mixed[1] += mixed[0]
    mixed[0] = x
    return mixed  # X, Y, B


def _remove_range(x: np.ndarray, w: float) -> None:
    """Shrink towards zero by w (a dead zone), in place."""
    x -= np.clip(x, F32(-w), F32(w))


def _amplify_range(x: np.ndarray, w: float) -> None:
    """Double inside [-w, w], shift by w outside, in place."""
    x += np.clip(x, F32(-w), F32(w))


def _clamp(x: np.ndarray, maxval: float) -> None:
    """Beyond +-maxval, grow at 0.724x, in place."""
    inside = np.clip(x, F32(-maxval), F32(maxval))
    x -= inside
    x *= F32(0.724216145665)
    x += inside


class _Bands:
    """One image's frequency bands, at one resolution: LF (3 planes, as "vals", where squared
    differences are comparable), MF (3 planes), HF and UHF (X and Y)."""

    def __init__(self, linear: np.ndarray) -> None:
        xyb = _opsin(linear)
        lf = _blur(xyb, 7.15593339443)
        mf = np.subtract(xyb, lf, out=xyb)
        blurred = _blur(mf, 3.22489901262)
        uhf = mf[:2] - blurred[:2]  # HF and UHF, until the HF blur splits them
        mf = blurred
        _remove_range(mf[0], 0.29)
        _amplify_range(mf[1], 0.1)
        s, yw = F32(0.653020556257), F32(46.0)
        suppress = uhf[1] * uhf[1]
        suppress += yw
        np.divide((F32(1) - s) * yw, suppress, out=suppress)
        suppress += s
        uhf[0] *= suppress
        hf = _blur(uhf, 1.56416327805)
        uhf[0] -= hf[0]
        _remove_range(uhf[0], 0.04)
        _remove_range(hf[0], 1.5)
        _clamp(hf[1], 28.4691806922)
        uhf[1] -= hf[1]
        _clamp(uhf[1], 5.19175294647)
        uhf[1] *= F32(2.69313763794)
        hf[1] *= F32(2.155)
        _amplify_range(hf[1], 0.132)
        lf[0] *= F32(32.2217497012)
        lf[2] += F32(-0.362267051518) * lf[1]
        lf[2] *= F32(47.504615728)
        lf[1] *= F32(13.7697791434)
        self.lf, self.mf, self.hf, self.uhf = lf, mf, hf, uhf


# --- differences -----------------------------------------------------------------------------


class _Side:
    """The reference's side at one resolution: what every comparison with it reads."""

    def __init__(self, planes: np.ndarray) -> None:
        self.bands = b = _Bands(planes)
        self.activity = _blur(_activity(b), 2.7)
        mask = _erode(self.activity)
        self.mask_ac = _mask_weight(mask, 0.829591754942, 0.451936922203, 2.5485944793)
        self.mask_dc = _mask_weight(mask, 0.20025578522, 3.87449418804, 0.505054525019)


def _sides(planes: np.ndarray) -> list[_Side]:
    """The full size and, unless it is smaller than 8 px, the half size."""
    half = _half(planes)
    return [_Side(planes)] + ([_Side(half)] if min(half.shape[1:]) >= 8 else [])


def _diffmap(sides: list[_Side], dist: np.ndarray) -> np.ndarray:
    full = _diffmap_one(sides[0], dist)
    if len(sides) == 1:
        return full
    sub = _diffmap_one(sides[1], _half(dist))
    up = np.repeat(np.repeat(sub, 2, axis=0), 2, axis=1)[: full.shape[0], : full.shape[1]]
    full *= F32(1.0 - 0.3 * 0.5)
    up *= F32(0.5)
    full += up
    return full


def _diffmap_one(ref: _Side, planes: np.ndarray) -> np.ndarray:
    p0, p1 = ref.bands, _Bands(planes)
    # AC (the masked high and middle frequencies) per channel: Malta line filters on UHF (9
    # taps), HF and MF (5 taps), weight and norm per band and channel; then squared HF (with
    # asymmetry: lost contrast counts extra) and MF differences.
    ac = F32(16.2176043152) * (p0.mf[2] - p1.mf[2]) ** 2
    for c, (malta_weights, hf_weight, mf_weight) in enumerate(_AC_WEIGHTS):
        bands = ((p0.uhf[c], p1.uhf[c]), (p0.hf[c], p1.hf[c]), (p0.mf[c], p1.mf[c]))
        for (band0, band1), (weight, norm), lf in zip(
            bands, malta_weights, (False, True, True), strict=True
        ):
            ac += malta.diffmap(band0, band1, weight, norm, lf)
        diff = p0.hf[c] - p1.hf[c]
        beyond = malta.beyond(p1.hf[c], malta.bounds(p0.hf[c], 0.4, 1.0))
        ac += F32(0.8 * hf_weight) * (diff * diff + beyond * beyond)
        diff = p0.mf[c] - p1.mf[c]
        ac += F32(mf_weight) * diff * diff
    # Masking: the reference's activity decides; a change of activity is an error too.
    change = ref.activity - _blur(_activity(p1), 2.7)
    ac += F32(10.0) * change * change
    # DC: squared low-frequency differences in "vals".
    dlf = p0.lf - p1.lf
    dlf *= dlf
    dc = np.einsum("c,chw->hw", _LF_WEIGHTS, dlf)
    ac *= ref.mask_ac
    dc *= ref.mask_dc
    ac += dc
    out: np.ndarray = np.sqrt(ac, out=ac)
    return out


def _erode(blurred: np.ndarray) -> np.ndarray:
    """0.45, 0.3, 0.25 x the 3 smallest of: the pixel, twice it (twice), and its 8 neighbours
    3 px away (those inside the image)."""
    h, w = blurred.shape
    pad = np.pad(blurred, 3, constant_values=np.inf)
    m0 = blurred.copy()
    m1 = blurred * F32(2)
    m2 = m1.copy()
    t = np.empty_like(m0)
    for dy in (-3, 0, 3):
        for dx in (-3, 0, 3):
            if dy == dx == 0:
                continue
            v = pad[3 + dy : 3 + dy + h, 3 + dx : 3 + dx + w]
            np.minimum(m2, np.maximum(m1, v, out=t), out=m2)
            np.minimum(m1, np.maximum(m0, v, out=t), out=m1)
            np.minimum(m0, v, out=m0)
    m0 *= F32(0.45)
    m1 *= F32(0.3)
    m2 *= F32(0.25)
    m0 += m1
    m0 += m2
    return m0


def _activity(p: _Bands) -> np.ndarray:
    x = p.uhf[0] + p.hf[0]
    x *= F32(2.5)
    y = p.uhf[1] + p.hf[1]
    y *= F32(0.4)
    x *= x
    y *= y
    x += y
    np.sqrt(x, out=x)
    mul, bias = F32(6.19424080439), F32(6.19424080439 * 12.61050594197)
    x *= mul
    x += bias
    np.sqrt(x, out=x)
    x -= np.sqrt(bias)
    return x


_GLOBAL_SCALE = 0.0710417702794075  # 1 / (17.8 x 0.79079917404), as the 0.7 binary has it


def _mask_weight(val: np.ndarray, offset: float, scaler: float, mul: float) -> np.ndarray:
    r = F32(_GLOBAL_SCALE) * (F32(1) + F32(mul) / (F32(scaler) * val + F32(offset)))
    return r * r


# Per channel (X, Y): Malta's (weight, norm) on UHF, HF and MF; asymmetric HF; squared MF.
_AC_WEIGHTS = (
    (((173.5, 5.0), (6923.99476109, 8051.15833247), (8246.75321353, 1009002.70582)), 400.0, 2150.0),
    (
        (
            (1.10039032555, 71.7800275169),
            (18.7237414387, 4498534.45232),
            (37.0819870399, 130262059.556),
        ),
        1.50815703118,
        10.6195433239,
    ),
)
_LF_WEIGHTS = np.array([29.2353797994, 0.844626970982, 0.703646627719], dtype=F32)
