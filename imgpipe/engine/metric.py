"""The perceptual metric the quality presets aim at: a score from 0 (ruined) to 100 (identical).

Design (after SSIMULACRA 2 and butteraugli, in about 100 lines of numpy):
- both images go to an XYB-like opponent space: linear sRGB -> the JPEG XL opsin (LMS-like)
  mix -> cube root, so equal steps are roughly equally visible;
- at 2 scales (1:4 and 1:8, box-averaged in linear light) three error maps per channel: SSIM
  (structure and contrast), "artifacts" (edges the original does not have: ringing, blocks,
  banding) and "detail lost" (edges the original has and the encoding smoothed away);
- each map is summarised by its mean and its 4-norm (the 4-norm sees a bad patch that a mean
  would average away): 36 features, each also taken square-rooted (72);
- a non-negative weighted sum of the features, plus a small per-format offset and a bias of
  the photo's own (its luma texture at 1:4 against 1:8: fine texture masks errors that a
  smooth photo shows), predicts butteraugli's 3-norm distance for the same pair; the score
  is 100 - 10 x that distance (butteraugli 1.0, "just noticeable", is 90).

The constants were fitted by non-negative least squares on 570 encodings (JPEG, WebP, AVIF at
5 qualities around the presets', 480 and 1200 px) of 19 photos in neither the benchmark nor
the held-out set; `bench_quality.py calibrate` redoes it and compares designs. Predicting
each photo from a fit on the other 18, the error is 0.11 butteraugli units rms (0.06 of it a
bias per photo); without the photo's bias it was 0.13 (0.08). Non-negative weights keep the
score monotone: more error anywhere never raises it (the bias is the original's, the same
for every encoding of it).

Images with alpha are judged on black and on white and the worse result counts: an error in a
half-transparent pixel shows on some background. An encoding without alpha (JPEG) is judged
against the reference it was made from, which the caller flattened the same way.
"""

from __future__ import annotations

import numpy as np
import pyvips

# Which halvings are scored. Finer ones are left out: fitted with scales 0-4, predictions for
# photos left out of the fit were no better than with 2-3 alone, and 1:1 and 1:2 are 94% of
# the cost. What butteraugli's 3-norm sees in web
# encodings (ringing, blocks, smearing) spans several pixels, so it shows at 1:4 and 1:8.
SCALES = (2, 3)
MIN_SIZE = 8  # pixels of the smallest scale; smaller images cannot be scored (see `scorable`)
_C2 = 0.0009  # SSIM's stabiliser for flat areas (values are about 0..1 here)

# JPEG XL's opsin absorbance matrix and bias (linear sRGB -> LMS-like cone responses).
_OPSIN = np.array(
    [
        [0.30, 0.622, 0.078],
        [0.23, 0.692, 0.078],
        [0.24342268924547819, 0.20476744424496821, 0.5518098665095536],
    ],
    dtype=np.float32,
)
_BIAS = np.float32(0.0037930732552754493)
_CBRT_BIAS = np.cbrt(_BIAS)

# Gaussian blur, sigma 1.5 (SSIM's window), radius 4: truncating there loses < 0.1% weight.
_g = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
_KERNEL = (_g / _g.sum()).astype(np.float32)

# Feature order: scale, then map (ssim, artifact, detail), then norm (mean, 4-norm), then
# channel (X, Y, B); then the same again, square-rooted. Fitted by bench/bench_quality.py
# calibrate; zero means "no help".
WEIGHTS = np.array(
    [
        0, 0, 0, 0, 7.92073, 0, 0, 0, 0, 0, 1.93301, 0, 0, 0, 0, 2.22013, 0, 11.0919, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 72.7323, 0, 0, 0, 0, 0, 1.70503, 0, 0.161624, 0,
        0, 0, 21.925, 0, 0, 0, 0, 0, 0.94911, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ]
)
# Butteraugli sees a little more in JPEG's blocks and a little less in WebP's smoothing than
# the features do at the same value: per-format offsets, fitted with the weights.
FORMAT_OFFSETS: dict[str, float] = {"jpeg": 0.1458, "webp": -0.01648}
INTERCEPT = -0.8639  # fitted, with the bias below (which is never 0)
# Butteraugli's verdict on the same features shifts with the photo: busy texture masks what a
# smooth photo shows: finer texture (at 1:4, relative to 1:8) hides more. Weights of
# bias_terms (either sign; only the luma texture at both scales earned a place, see
# bench/metric_fit.py), the bias clamped to the range the calibration photos span.
BIAS_WEIGHTS = np.zeros(15)
BIAS_WEIGHTS[[1, 4]] = -0.365478, 0.236873
BIAS_RANGE = (0.30, 0.67)


class Reference:
    """The original pixels, prepared once and scored against many encodings of them."""

    def __init__(self, image: pyvips.Image):
        if not scorable(image.width, image.height):
            raise ValueError(f"{image.width}x{image.height} is too small to score")
        self.size = (image.width, image.height)
        self.alpha = image.hasalpha()
        self._views = [_Prepared(lin) for lin in _on_backgrounds(image, self.alpha)]
        # This photo's own shift of the distance (see BIAS_WEIGHTS).
        self.bias = float(np.clip(bias_terms(self.descriptors()) @ BIAS_WEIGHTS, *BIAS_RANGE))

    def descriptors(self) -> np.ndarray:
        """What the original is like: per scale and channel, the mean local standard
        deviation (texture, noise) and the global one (contrast); the channels' means."""
        scales = self._views[0].scales
        out = [np.sqrt(np.maximum(var, 0)).mean(axis=(1, 2)) for _, _, var, _ in scales]
        out += [x.std(axis=(1, 2)) for x, _, _, _ in scales]
        out.append(scales[0][0].mean(axis=(1, 2)))
        return np.concatenate(out)

    def features(self, distorted: pyvips.Image) -> np.ndarray:
        """The 72 error features against each background (one row each), for calibration."""
        if (distorted.width, distorted.height) != self.size:
            raise ValueError(f"sizes differ: {distorted.width}x{distorted.height} vs {self.size}")
        rows = np.array(
            [
                view.features(lin)
                for view, lin in zip(
                    self._views, _on_backgrounds(distorted, self.alpha), strict=True
                )
            ]
        )
        return np.hstack([rows, np.sqrt(rows)])

    def error_map(self, distorted: pyvips.Image) -> np.ndarray:
        """Where the errors WEIGHTS count most are, per pixel at the first scale (1:4): the
        weighted sum of the error maps whose 4-norms the fit weighs (the coarser scale's
        repeated over its pixels). Not a distance: it only says where to look."""
        (view,), (lin,) = self._views[:1], _on_backgrounds(distorted, False)[:1]
        maps = view.error_maps(lin)  # per scale: (3 maps, 3 channels, H, W)
        h, w = maps[0].shape[-2:]
        total = np.zeros((h, w), dtype=np.float32)
        for scale, per_map in enumerate(maps):
            for m in range(3):
                for c in range(3):
                    i = scale * 18 + m * 6 + 3 + c  # the 4-norm feature of this map
                    weight = WEIGHTS[i] + WEIGHTS[36 + i]
                    if weight:
                        n = 1 << scale
                        up = np.repeat(np.repeat(per_map[m, c], n, 0), n, 1)[:h, :w]
                        total[: up.shape[0], : up.shape[1]] += weight * up
        return total

    def distance(self, distorted: pyvips.Image, fmt: str | None = None) -> float:
        """Predicted butteraugli 3-norm distance (0 = identical, 1 = just noticeable) of
        `distorted`, an encoding in `fmt`, to the reference."""
        raw = (self.features(distorted) @ WEIGHTS).max() + INTERCEPT + self.bias
        return float(max(0.0, raw + FORMAT_OFFSETS.get(fmt or "", 0.0)))

    def score(self, distorted: pyvips.Image, fmt: str | None = None) -> float:
        return score_of(self.distance(distorted, fmt))


def bias_terms(descriptors: np.ndarray) -> np.ndarray:
    """Reference.descriptors as BIAS_WEIGHTS weigh them: the standard deviations' logs (a
    photo twice as busy hides errors alike at any level), the means as they are."""
    return np.concatenate([np.log(descriptors[:12] + 1e-3), descriptors[12:]])


def scorable(width: int, height: int) -> bool:
    """Big enough for every scale of the metric."""
    return min(width, height) >> max(SCALES) >= MIN_SIZE


def score_of(distance: float) -> float:
    return round(max(0.0, 100.0 - 10.0 * distance), 2)


def _on_backgrounds(image: pyvips.Image, alpha: bool) -> list[np.ndarray]:
    """Linear-light RGB at the first scale: as it is, or on black and on white with alpha.

    libvips does the sRGB decoding and the first box-averaging (many times faster than numpy
    on full-size pixels). Blending commutes with box averages when colour is premultiplied,
    so it happens after the shrink, on few pixels.
    """
    if image.bands < 3:  # a grey decode; everything scored here is RGB(A) otherwise
        image = image.colourspace("srgb")
    colour = image.extract_band(0, n=3) if image.bands > 3 else image
    linear = colour.copy(interpretation="srgb").colourspace("scrgb")
    if alpha:
        opacity = (
            image.extract_band(3) / 255.0
            if image.bands > 3
            else pyvips.Image.black(image.width, image.height) + 1.0
        )
        linear = (linear * opacity).bandjoin(opacity)
    factor = 1 << min(SCALES)
    linear = linear.cast("float").shrink(factor, factor)
    planes = np.frombuffer(linear.write_to_memory(), dtype=np.float32).reshape(
        linear.height, linear.width, linear.bands
    )
    if not alpha:
        return [planes]
    on_black, coverage = planes[..., :3], planes[..., 3:]
    return [on_black, on_black + (1 - coverage)]


class _Prepared:
    """Per scale: the original's XYB planes, their blur and their blurred square."""

    def __init__(self, linear: np.ndarray):
        self.scales = []
        for lin in _pyramid(linear):
            x = _xyb(lin)
            mu = _blur(x)
            self.scales.append((x, mu, _blur(x * x) - mu * mu, 1 + np.abs(x - mu)))

    def features(self, linear: np.ndarray) -> np.ndarray:
        out = []
        for maps in self.error_maps(linear):
            for error in maps:
                out.append(error.mean(axis=(1, 2)))
                square = error * error  # not error**4: numpy takes float32 powers the slow way
                out.append(np.sqrt(np.sqrt((square * square).mean(axis=(1, 2)))))
        return np.concatenate(out)

    def error_maps(self, linear: np.ndarray) -> list[np.ndarray]:
        """Per scale, the ssim, artifact and detail-lost maps (3 x 3 channels x H x W)."""
        out = []
        for (x1, mu1, var1, edge1), lin in zip(self.scales, _pyramid(linear), strict=True):
            x2 = _xyb(lin)
            mu2 = _blur(x2)
            var2 = _blur(x2 * x2) - mu2 * mu2
            cov = _blur(x1 * x2) - mu1 * mu2
            # SSIM without the luminance ratio term (XYB is already perceptually even; the
            # ratio would overweight dark areas), as SSIMULACRA 2 does.
            ssim = np.maximum(1 - (1 - (mu1 - mu2) ** 2) * (2 * cov + _C2) / (var1 + var2 + _C2), 0)
            edge = (1 + np.abs(x2 - mu2)) / edge1 - 1
            out.append(np.stack([ssim, np.maximum(edge, 0), np.maximum(-edge, 0)]))
        return out


def _pyramid(linear: np.ndarray):
    """The image at each of SCALES (it comes in at the first), box-averaged in linear light."""
    scale = min(SCALES)
    yield linear
    for wanted in SCALES[1:]:
        # 2^n x 2^n blocks averaged in one pass: the same as n halvings, without the copies.
        n = 1 << (wanted - scale)
        h, w = linear.shape[0] // n * n, linear.shape[1] // n * n
        blocks = linear[:h, :w].reshape(h // n, n, w // n, n, 3)
        # Summed slice by slice: ten times faster than numpy's mean over two strided axes.
        rows = blocks[:, 0].copy()
        for i in range(1, n):
            rows += blocks[:, i]
        linear = rows[:, :, 0].copy()
        for j in range(1, n):
            linear += rows[:, :, j]
        linear *= np.float32(1 / (n * n))
        scale = wanted
        yield linear


def _xyb(linear: np.ndarray) -> np.ndarray:
    """3 x H x W planes: X (red-green), Y (luma), B - Y (blue-yellow), shifted to be >= 0."""
    cone = np.cbrt(linear @ _OPSIN.T + _BIAS) - _CBRT_BIAS
    x = (cone[..., 0] - cone[..., 1]) * 0.5
    y = (cone[..., 0] + cone[..., 1]) * 0.5
    return np.stack([x * 14 + 0.42, y + 0.01, cone[..., 2] - y + 0.55]).astype(np.float32)


def _blur(planes: np.ndarray) -> np.ndarray:
    """Separable Gaussian over the last two axes, edges mirrored."""
    r = len(_KERNEL) // 2
    h, w = planes.shape[-2:]
    pad = [(0, 0)] * (planes.ndim - 2)
    p = np.pad(planes, [*pad, (r, r), (0, 0)], mode="reflect")
    rows = _KERNEL[0] * p[..., 0:h, :]
    for i in range(1, len(_KERNEL)):
        rows += _KERNEL[i] * p[..., i : i + h, :]
    p = np.pad(rows, [*pad, (0, 0), (r, r)], mode="reflect")
    out = _KERNEL[0] * p[..., :, 0:w]
    for i in range(1, len(_KERNEL)):
        out += _KERNEL[i] * p[..., :, i : i + w]
    return out
