"""How each rendition is encoded: the format, the quality meeting the preset's perceptual target,
and when the source's own bytes are the better answer.

One `Optimiser` serves every rendition of one source (`Source.render_all`). A search's answer
depends on where it starts, and a rendition's bytes must not depend on what else was built
with it (its output name is a hash of its own inputs): so a search never starts from what
another rendition found, but from a *probe*, the quality found on a small rendition of the
same source, format and preset that is fixed by the source alone (`Optimiser.probe`, run by
Source), moved by the usual drift with size. It lands most searches within the tolerance at
the first encode, as seeding from the last size did.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pyvips

from ..errors import Problem
from ..formats import AUTO, FORMATS
from ..options import Recipe
from . import judge, metric
from .encode import (
    GUESS_WIDTH,
    SCALES,
    TARGETS,
    Encoding,
    check_fits,
    encode,
    keeps_alpha,
    plan,
)
from .search import TOLERANCE, Found, find_checked
from .transform import settle_alpha

_LOADERS = {
    "jpeg": "jpegload_buffer",
    "png": "pngload_buffer",
    "webp": "webpload_buffer",
    "avif": "heifload_buffer",
}


@dataclass(frozen=True)
class Outcome:
    data: bytes
    format: str
    quality: str | int
    encoder_quality: int | None
    score: float | None
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Original:
    """The source as far as the optimiser cares: its bytes may stand in for a rendition."""

    data: bytes
    family: str  # loader family (jpeg, png, webp...)
    jpeg_quality: int | None  # estimated from its quantisation tables
    name: str = "<bytes>"  # for messages
    # A JPEG's coefficients recoded losslessly (lossless.optimise_jpeg), made once per source
    # whoever asks first (the optimiser, standin.py); None when mozjpeg cannot read it.
    recoded: Callable[[], bytes | None] = lambda: None


class Optimiser:
    def __init__(self, original: Original):
        self.original = original
        # (format, preset) -> (width, quality) found on a small probe of this source fixed
        # by the source alone (Source sets it): where every search of that kind starts.
        self.seed: Callable[[str, str], tuple[int, int] | None] | None = None

    def encode(
        self,
        image: pyvips.Image,
        recipe: Recipe,
        *,
        alpha_used: bool,
        few_colours: Callable[[], bool],
        resizes: bool,
        untouched: bool,
        deadline: float = math.inf,
        reduction: float = 1.0,
    ) -> Outcome:
        """The rendition of `image` (shaped, sRGB) for `recipe`. `untouched`: these are the
        source's own pixels (no resize, crop, trim, rotation or colour conversion), so its
        bytes may be kept; `reduction`: how many times smaller than the source it is. Raises
        TimeoutError when nothing could be made in time."""
        lossless = recipe.quality == "lossless" and not resizes
        if recipe.format != AUTO:
            candidates = [recipe.format]
        elif alpha_used:
            candidates = ["png"]
        elif lossless:
            # A JPEG source kept as it is loses nothing and beats any PNG of a photo: a PNG is
            # tried for a graphic only (a 13 MP photo's PNG took longer than timeout=30).
            if self._keepable("jpeg", untouched):
                candidates = ["png", "jpeg"] if few_colours() else ["jpeg"]
            else:
                candidates = ["png"]
        elif few_colours():
            candidates = ["png", "jpeg"]
        else:
            candidates = ["jpeg"]  # a photo: a PNG is never the smallest at any target
        outcomes = [
            self._one(
                image,
                fmt,
                recipe,
                alpha_used,
                few_colours,
                resizes,
                untouched,
                deadline,
                auto=len(candidates) > 1,
                reduction=reduction,
            )
            for fmt in candidates
        ]
        # Smallest first; every candidate meets the target by construction.
        return min(outcomes, key=lambda o: len(o.data))

    def _one(
        self,
        image: pyvips.Image,
        fmt: str,
        recipe: Recipe,
        alpha_used: bool,
        few_colours: Callable[[], bool],
        resizes: bool,
        untouched: bool,
        deadline: float,
        auto: bool,
        reduction: float = 1.0,
    ) -> Outcome:
        check_fits(fmt, image.width, image.height, self.original.name)
        if recipe.quality == "lossless" and fmt == "jpeg" and self._keepable(fmt, untouched):
            # mozjpeg's lossless recoding keeps every DCT coefficient: the pixels stay exact.
            kept = self._optimised_source()
            assert kept is not None  # _keepable
            return Outcome(kept, fmt, "lossless", None, 100.0)
        few = fmt == "gif" and recipe.quality == "lossless" and few_colours()
        # A JPEG source caps the quality of a JPEG made from it (its artefacts would only come
        # back bigger), unless the rendition is much smaller: its blocks are averaged away.
        cap = self.original.jpeg_quality if reduction < UNCAPPED_REDUCTION else None
        encoding, warnings = plan(fmt, recipe.quality, resizes, few, cap, image.width)
        if alpha_used and not keeps_alpha(fmt):
            warnings = (*warnings, flattened(fmt, recipe.bgcolor))
        final = settle_alpha(image, keeps_alpha(fmt) and alpha_used, recipe.bgcolor)
        if encoding.target is not None and metric.scorable(final.width, final.height):
            outcome = self._searched(final, encoding, recipe, untouched, deadline)
        else:
            data = encode(final, encoding, _left(deadline))
            score = 100.0 if encoding.lossless else None
            if auto and encoding.palette:
                # Among candidates, a palette PNG must meet the target like the others.
                score = _score_of(final, data, fmt)
                if score is not None and score < TARGETS[str(recipe.quality)] - TOLERANCE:
                    encoding = replace(encoding, palette=False, lossless=True, encoder_quality=None)
                    data, score = encode(final, encoding, _left(deadline)), 100.0
            if time.monotonic() > deadline:
                raise TimeoutError
            outcome = Outcome(data, fmt, encoding.quality, encoding.encoder_quality, score)
        return replace(outcome, warnings=(*warnings, *outcome.warnings))

    def probe(self, image: pyvips.Image, recipe: Recipe) -> tuple[int, int] | None:
        """(width, quality) found for `image` (shaped, sRGB) as `recipe` asks, searched from
        the tables with no deadline; None when there is nothing to learn from it."""
        fmt = recipe.format
        encoding, _ = plan(
            fmt,
            recipe.quality,
            True,
            False,
            None,
            image.width,  # a guess: never capped
        )
        final = settle_alpha(image, keeps_alpha(fmt) and image.hasalpha(), recipe.bgcolor)
        if encoding.target is None or not metric.scorable(final.width, final.height):
            return None
        found, _ = search(final, encoding, guess_of(final.width, encoding), math.inf, checks=0)
        if found.quality is None or not found.reachable or found.quality >= encoding.ceiling:
            return None
        return final.width, found.quality

    def _searched(
        self,
        final: pyvips.Image,
        encoding: Encoding,
        recipe: Recipe,
        untouched: bool,
        deadline: float,
    ) -> Outcome:
        fmt = encoding.format
        guess = guess_of(final.width, encoding)
        if self.seed is not None:
            probed = self.seed(fmt, str(encoding.quality))
            if probed is not None:  # this image's own demand, moved by the usual drift
                width, quality = probed
                guess = round(quality + PROBE_DRIFT[fmt] * math.log2(final.width / width))
        found, data = search(final, encoding, guess, deadline)
        if found.quality is None or data is None:
            return self._nothing_in_time(fmt, recipe, untouched)
        quality, score = found.quality, found.score
        if fmt == "jpeg" and self._keepable(fmt, untouched):
            # DESIGN §2: JPEG quality only goes down. When the re-encode is not smaller than
            # the source itself, or the cap kept it below the target (a second generation of
            # artefacts), the source's own bytes, losslessly optimised, are exact and small.
            kept = self._optimised_source()
            assert kept is not None  # _keepable
            capped = not found.reachable and score < encoding.target - TOLERANCE
            if len(kept) <= len(data) or capped:
                data, quality, score = kept, self.original.jpeg_quality, 100.0
        warnings = (_search_timeout(recipe, found, encoding.target),) if found.timed_out else ()
        return Outcome(data, fmt, encoding.quality, quality, score, warnings)

    def _keepable(self, fmt: str, untouched: bool) -> bool:
        """Whether the JPEG source's own coefficients may stand in for this rendition: only
        when mozjpeg can recode them (see lossless.optimise_jpeg for the files it cannot)."""
        return (
            untouched
            and self.original.family == fmt == "jpeg"
            and self._optimised_source() is not None
        )

    def _optimised_source(self) -> bytes | None:
        return self.original.recoded()

    def _nothing_in_time(self, fmt: str, recipe: Recipe, untouched: bool) -> Outcome:
        """The deadline passed before a single encode: the source itself, if it fits."""
        if not (untouched and self.original.family == fmt) or (
            fmt == "jpeg" and not self._keepable(fmt, untouched)
        ):
            raise TimeoutError
        return Outcome(
            self.original.data,
            fmt,
            recipe.quality,
            self.original.jpeg_quality,
            None,
            (
                Problem(
                    "timeout-copied",
                    f"no encoding was ready within timeout="
                    f"{recipe.timeout:g}s; the source file is used as it is",
                ),
            ),
        )


# A rendition this many times smaller than its JPEG source is not capped at the source's
# quality: 8x8 blocks shrink to 4 px or less and average out. Measured on held-out photos
# (bench_quality.py, Plasma's JPEGs of quality ~70): capped, their 480 and 1200 px JPEGs
# missed the medium target (butteraugli 1.53 and 1.44 against a goal of 1.2).
UNCAPPED_REDUCTION = 2.0

# The quality probe: a small rendition fixed by the source, format and preset alone. It only
# seeds the searches' start, so it is not checked by butteraugli (judge.py): -11% CPU per
# rendition on 6 held-out photos (bench_quality.py), spreads no wider.
PROBE_BOX = 320
# Quality change per doubling of width from the probe's answer to a rendition's. Not the
# tables' drift (SCALES, measured between 480 and 1600 px before the per-width target
# corrections, which make big JPEGs need less quality and big WebPs more; and at 320 px the
# metric scores 80 and 40 px pyramids). Fitted on the 19 calibration photos' searches at 480,
# 960 and 1600 px (quality=medium, AVIF tuned for SSIM, WebP without sharp YUV): least squares
# of (answer - probe's answer) on the doublings. With the drifts before (JPEG -1, WebP -1,
# AVIF -3) no JPEG search at 1600 px ended at its first encode, now 2 in 3 do; searches at
# 960 and 1600 px took 1.85 encodes each on average, now 1.34 (bench_quality.py quality
# prints encodes per search by format and width).
PROBE_DRIFT = {"jpeg": -5.4, "webp": 0.7, "avif": -0.7}


def flattened(fmt: str, bgcolor: str) -> Problem:
    """The warning of a transparent image written in a format without transparency."""
    return Problem(
        "alpha-flattened",
        f"the image has transparent pixels, which {FORMATS[fmt].name.upper()} cannot keep: "
        f"they are flattened onto #{bgcolor}; use format=auto (PNG for transparent images) "
        "or format=webp to keep them",
    )


def probe_recipe(fmt: str, preset: str) -> Recipe:
    return Recipe(width=PROBE_BOX, height=PROBE_BOX, format=fmt, quality=preset)


def probe_of(recipe: Recipe) -> tuple[str, str] | None:
    """The probe a recipe's quality search starts from, if it searches (auto: a photo's JPEG)."""
    if not isinstance(recipe.quality, str) or recipe.quality not in TARGETS:
        return None
    fmt = "jpeg" if recipe.format == AUTO else recipe.format
    return (fmt, recipe.quality) if fmt in SCALES else None


def search(
    final: pyvips.Image, encoding: Encoding, guess: int, deadline: float, checks: int = 3
) -> tuple[Found, bytes | None]:
    """The lowest encoder quality whose encode of `final` meets `encoding.target`, and its
    bytes (None when nothing was encoded in time).

    A searched JPEG keeps 4:2:0 chroma (see encode.encode). A photo whose colour detail that
    cannot carry (it needs quality FULL_CHROMA_FROM or more, or misses at the ceiling) is
    searched again in full chroma; a WebP that needs SHARP_YUV_FROM or more or misses at the
    ceiling (sharp colour edges, which libwebp's own chroma subsampling smears) again with
    sharp YUV. The smaller of the two answers meeting the target wins.
    """
    found, data = _search_once(final, encoding, guess, deadline, checks)
    if found.quality is None:
        return found, data
    if encoding.format == "jpeg" and not encoding.full_chroma:
        if found.reachable and found.quality < FULL_CHROMA_FROM:
            return found, data
        other = replace(encoding, full_chroma=True)
    elif encoding.format == "webp" and not encoding.sharp_yuv:
        if found.reachable and found.quality < SHARP_YUV_FROM:
            return found, data
        other = replace(encoding, sharp_yuv=True)
    else:
        return found, data
    second, second_data = _search_once(final, other, guess, deadline, checks)
    assert encoding.target is not None
    if second.quality is not None and _preferred(second, second_data, found, data, encoding.target):
        return second, second_data
    return found, data


# A searched JPEG needing this quality or more in 4:2:0 is tried in full chroma too: it is
# where mozjpeg's own default would have stopped subsampling.
FULL_CHROMA_FROM = 90
# A WebP needing this quality or more without sharp YUV is tried with it too: saturated colour
# edges and smooth colour ramps, where libwebp's own subsampling needs a higher quality than
# sharp YUV does (a 320 px ramp: 89 against 81, 60% more bytes). Most photos' WebPs land
# between 65 and 85, so few of them pay for the second search.
SHARP_YUV_FROM = 85


def _search_once(
    final: pyvips.Image, encoding: Encoding, guess: int, deadline: float, checks: int
) -> tuple[Found, bytes | None]:
    """The search with the metric, its answers checked by butteraugli (judge.py; the metric's
    error can change with the quality, an AVIF artefact at one setting gone at the next)."""
    fmt, scale = encoding.format, SCALES[encoding.format]
    assert encoding.target is not None and encoding.ceiling is not None
    reference = metric.Reference(final)
    encoded: dict[int, bytes] = {}
    scores: dict[int, float] = {}

    def evaluate(quality: int) -> float:
        if quality not in scores:  # the second search revisits the first one's answers
            encoded[quality] = encode(final, replace(encoding, encoder_quality=quality))
            scores[quality] = reference.score(_decode(encoded[quality], fmt), fmt)
        return scores[quality]

    average = encoding.target - TARGETS[str(encoding.quality)]

    checker = judge.Check(reference, final)

    def check(quality: int) -> float:
        return checker.correction(_decode(encoded[quality], fmt), fmt, average)

    low = min(scale.low, encoding.ceiling)
    found = find_checked(
        evaluate,
        check,
        encoding.target,
        low,
        encoding.ceiling,
        guess,
        scale.slope,
        deadline,
        checks,
    )
    return found, encoded[found.quality] if found.quality is not None else None


def _preferred(
    a: Found, a_data: bytes | None, b: Found, b_data: bytes | None, target: float
) -> bool:
    """Whether answer `a` beats `b`: meeting the target first, then fewer bytes; when neither
    meets it, the higher score."""
    meets_a = a.score is not None and a.score >= target - TOLERANCE
    meets_b = b.score is not None and b.score >= target - TOLERANCE
    if meets_a != meets_b:
        return meets_a
    if meets_a:
        return len(a_data or b"") < len(b_data or b"")
    return (a.score or 0.0) > (b.score or 0.0)


def guess_of(width: int, encoding: Encoding) -> int:
    """Where the search starts: the table's quality for the preset, moved by the usual drift
    with size (a bigger rendition needs a lower quality for the same score)."""
    scale = SCALES[encoding.format]
    known = encoding.encoder_quality or scale.high
    return round(known + scale.drift * math.log2(width / GUESS_WIDTH))


def _search_timeout(recipe: Recipe, found: Found, target: float) -> Problem:
    return Problem(
        "timeout-search",
        f"the quality search stopped at timeout={recipe.timeout:g}s after "
        f"{len(found.trials)} encodes; using quality {found.quality} "
        f"(score {found.score:g}, target {target:g})",
    )


def _decode(data: bytes, fmt: str) -> pyvips.Image:
    # Named loaders only (load.py blocks format sniffing by libvips).
    return getattr(pyvips.Image, _LOADERS[fmt])(data)


def _score_of(final: pyvips.Image, data: bytes, fmt: str) -> float | None:
    if not metric.scorable(final.width, final.height):
        return None
    return metric.Reference(final).score(_decode(data, fmt), fmt)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
