"""The ImageOptim API option language: `160x100,crop=auto,2x,quality=low,format=webp`.

Pure: parses a string into an immutable `Recipe` (recipe.py, with its canonical string form:
same meaning, same string), or raises `OptionError` listing every problem. Things that are
close enough to work are accepted and recorded as warnings with stable codes.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import OptionError, Problem, closest, describe
from .formats import AUTO, FORMAT_ALIASES, FORMATS
from .recipe import DEFAULT_BGCOLOR as DEFAULT_BGCOLOR  # re-exported, as the language's
from .recipe import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .recipe import Recipe as Recipe

MAX_SIDE = 10000
MIN_DENSITY, MAX_DENSITY = 1, 3
MAX_TIMEOUT = 3600.0

GRAVITIES = ("centre", "auto", "top", "bottom", "left", "right")
QUALITY_PRESETS = ("low", "medium", "high", "lossless")
# What of a source's EXIF/XMP/IPTC its renditions keep (engine/metadata.py): nothing (the
# default), only the credit (artist, copyright), or everything, GPS position included.
METADATA_POLICIES = ("strip", "copyright", "keep")
FORMAT_NAMES = (AUTO, *FORMATS)

# Every token form, for "expected ..." messages and close-match suggestions.
VOCABULARY = (
    "full",
    "scale-down",
    "fit",
    "crop",
    "pad",
    "trim",
    "trim=border",
    *(f"crop={g}" for g in GRAVITIES if g != "centre"),
    *(f"quality={q}" for q in QUALITY_PRESETS),
    *(f"format={f}" for f in FORMAT_NAMES),
    *(f"metadata={m}" for m in METADATA_POLICIES),
    "bgcolor=",
    "timeout=",
    "aspect=16:9",
    "aspect=1:1",
    "focus=0.5x0.5",
    "1x",
    "2x",
    "3x",
)
EXPECTED_TOKEN = (
    "one of: full, W, WxH, xH (1..10000), a density 1x..3x, scale-down, fit, crop, "
    "crop=auto|top|bottom|left|right|FXxFY, pad, trim, bgcolor=RGB|RRGGBB, "
    "quality=low|medium|high|lossless|1..100, format="
    + "|".join(FORMAT_NAMES)
    + ", metadata=strip|copyright|keep, timeout=SECONDS, aspect=W:H, focus=FXxFY"
)

# A "density" this large is a size whose height was left out (`160x`), never a density.
SIZE_NOT_DENSITY = 10
# What people mean by crop words the language does not have: crop=middle is plain `crop`.
CROP_MEANINGS = {
    "center": "crop",
    "centre": "crop",
    "middle": "crop",
    "smart": "crop=auto",
    "attention": "crop=auto",
    "entropy": "crop=auto",
    "face": "crop=auto",
    "north": "crop=top",
    "south": "crop=bottom",
    "west": "crop=left",
    "east": "crop=right",
}
CROP_ADVICE = "use 'crop' to keep the centre or 'crop=auto' to keep the most important area"

_SIZE = re.compile(r"^(\d+)?x(\d+)$|^(\d+)$")
_DENSITY = re.compile(r"^(\d+(?:\.\d+)?)x$")
_FOCAL = re.compile(r"^(\d*\.?\d+)x(\d*\.?\d+)$")
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_ASPECT = re.compile(r"^(\d+):(\d+)$")
_ASPECT_LOOSE = re.compile(r"^(\d+)\s*[x/×]\s*(\d+)$")


def _warn(code: str, message: str, where: str) -> Problem:
    return Problem(code=code, message=message, where=where)


def parse(text: str) -> Recipe:
    """Parse an option string; raise OptionError listing every problem found."""
    return settle(parse_tokens(text))


def parse_tokens(text: str) -> Recipe:
    """The tokens of an option string as a recipe, before the rules that need the whole
    recipe (`settle`): a family adds its widths and formats to this, then settles each."""
    if not text or not text.strip():
        raise OptionError(
            describe(
                "empty-options",
                text,
                "at least one token; use 'full' for no resizing",
                suggestion="full",
            )
        )
    values: dict = {}
    errors: list[Problem] = []
    warnings: list[Problem] = []
    seen: dict[str, str] = {}  # slot -> the token that set it, for repeated-option warnings

    def set_slot(slot: str, token: str, where: str, **fields) -> None:
        if slot in seen:
            code = "repeated-size" if slot == "size" else "repeated-option"
            message = (
                f"{token!r} replaces {seen[slot]!r}: the last one wins"
                if seen[slot] != token
                else f"{token!r} is given twice; once is enough"
            )
            warnings.append(_warn(code, message, where))
        seen[slot] = token
        values.update(fields)

    raw_tokens = text.split(",")
    for index, raw in enumerate(raw_tokens, start=1):
        where = f"token {index}"
        token = raw.strip()
        if token != raw:
            warnings.append(
                _warn("whitespace", f"spaces around {raw!r} are not part of the language", where)
            )
        if not token:
            warnings.append(_warn("empty-token", "an empty token was ignored", where))
            continue
        key, eq, value = token.partition("=")
        lowered_key = key.lower()
        if lowered_key != "bgcolor" and token != token.lower():
            warnings.append(_warn("uppercase", f"{token!r} should be lowercase", where))
            token, value = token.lower(), value.lower()
        key = lowered_key

        problem = _parse_token(token, key, eq, value, where, set_slot, warnings)
        if problem:
            errors.append(problem)

    if errors:
        raise OptionError(errors)
    focus = values.pop("focus", None)
    if focus is not None:
        _apply_focus(values, focus, seen["focus"], warnings)
    return Recipe(**values, warnings=tuple(warnings))


def _apply_focus(values: dict, focus: tuple[Fraction, Fraction], token: str, warnings) -> None:
    """`focus=FXxFY` is the point a plain `crop`, `crop=auto` or an aspect cut keeps; a crop
    that names its own side or point keeps that."""
    if values.get("mode") == "crop" and values.get("gravity") not in ("centre", "auto"):
        own = values["gravity"] if values["gravity"] != "focal" else "FXxFY"
        warnings.append(
            _warn(
                "focus-overridden", f"{token!r} is ignored: crop={own} names its own position", ""
            )
        )
        return
    values["focal"] = focus
    if values.get("mode") == "crop":
        values["gravity"] = "focal"


def settle(recipe: Recipe) -> Recipe:
    """Apply the rules that depend on the whole recipe (a density needs a size, crop and pad
    need a box); their warnings join the recipe's."""
    warnings = list(recipe.warnings)
    if recipe.full and recipe.density != 1:
        warnings.append(
            _warn("density-without-size", "a density means nothing without a size; ignored", "")
        )
        recipe = recipe.with_(density=Fraction(1))
    # With an aspect, a crop's gravity places the cut, and a one-sided box gets its other side.
    if recipe.mode in ("crop", "pad") and not ((recipe.width and recipe.height) or recipe.aspect):
        warnings.append(
            _warn(
                "crop-needs-box",
                f"{recipe.mode} needs both width and height (WxH); treated as scale-down",
                "",
            )
        )
        recipe = recipe.with_(mode="scale-down", gravity="centre", focal=None)
    if recipe.focal is not None and recipe.mode != "crop" and not recipe.aspect:
        warnings.append(
            _warn("focus-unused", "focus= places a crop, and nothing is cropped; ignored", "")
        )
        recipe = recipe.with_(focal=None)
    return recipe.with_(warnings=tuple(warnings))


def _parse_token(token, key, eq, value, where, set_slot, warnings) -> Problem | None:
    """Apply one token through set_slot; return an error Problem or None."""
    if not eq:
        if token == "full":
            set_slot("size", token, where, width=None, height=None)
            return None
        if token in ("scale-down", "fit", "pad"):
            set_slot("mode", token, where, mode=token, gravity="centre", focal=None)
            return None
        if token == "crop":
            set_slot("mode", token, where, mode="crop", gravity="centre", focal=None)
            return None
        if token == "trim":
            set_slot("trim", token, where, trim=True)
            return None
        size = _SIZE.match(token)
        if size:
            return _parse_size(token, size, where, set_slot)
        density = _DENSITY.match(token)
        if density:
            d = Fraction(density.group(1))
            if d.denominator == 1 and d >= SIZE_NOT_DENSITY:
                # `160x` is a size missing its height, not a density of 160.
                return describe(
                    "incomplete-size",
                    token,
                    f"a size W, WxH or xH (1..{MAX_SIDE}) or a density 1x..3x",
                    where,
                    suggestion=f"{d}x{d}",
                    advice=f"or {str(d)!r} for a width alone",
                )
            if not MIN_DENSITY <= d <= MAX_DENSITY:
                return describe(
                    "bad-density",
                    token,
                    "a density from 1x to 3x (e.g. 2x, 1.5x)",
                    where,
                    suggestion=f"{min(max(round(d), 1), 3)}x",
                )
            set_slot("density", token, where, density=d)
            return None
        return describe(
            "unknown-token", token, EXPECTED_TOKEN, where, suggestion=closest(token, VOCABULARY)
        )

    if key == "crop":
        if value in GRAVITIES and value != "centre":
            set_slot("mode", token, where, mode="crop", gravity=value, focal=None)
            return None
        if _FOCAL.match(value):
            found = point(token, value, where, "crop=")
            if isinstance(found, Problem):
                return found
            set_slot("mode", token, where, mode="crop", gravity="focal", focal=found)
            return None
        # Compare the value alone: every crop token shares "crop=", which made "middle" look
        # like "left".
        side = closest(value, GRAVITIES[1:])
        suggestion = (
            "crop=0.5x0.5"
            if _NUMBER.match(value)
            else CROP_MEANINGS.get(value) or (side and f"crop={side}")
        )
        return describe(
            "bad-crop",
            token,
            "crop=auto|top|bottom|left|right or a focal point crop=FXxFY (0..1)",
            where,
            suggestion=suggestion,
            advice="" if suggestion else CROP_ADVICE,
        )
    if key == "aspect":
        return _parse_aspect(token, value, where, set_slot)
    if key == "focus":
        found = point(token, value, where, "focus=")
        if isinstance(found, Problem):
            return found
        set_slot("focus", token, where, focus=found)
        return None
    if key == "trim":
        if value == "border":
            set_slot("trim", token, where, trim=True)
            return None
        return describe("bad-trim", token, "trim or trim=border", where, suggestion="trim")
    if key == "bgcolor":
        hexcolor = _HEX.match(value)
        if not hexcolor:
            return describe(
                "bad-bgcolor",
                token,
                "bgcolor=RGB or bgcolor=RRGGBB in hex",
                where,
                suggestion="bgcolor=FFF",
            )
        digits = hexcolor.group(1).upper()
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        set_slot("bgcolor", token, where, bgcolor=digits)
        return None
    if key == "quality":
        if value in QUALITY_PRESETS:
            set_slot("quality", token, where, quality=value)
            return None
        if value.isdigit() and 1 <= int(value) <= 100:
            set_slot("quality", token, where, quality=int(value))
            return None
        if value.isdigit():  # a number out of range: the nearest number in range
            suggestion = f"quality={min(max(int(value), 1), 100)}"
        else:
            suggestion = (
                closest(token, [f"quality={q}" for q in QUALITY_PRESETS]) or "quality=medium"
            )
        return describe(
            "bad-quality", token, "quality=low|medium|high|lossless or 1..100", where, suggestion
        )
    if key == "format":
        if value in FORMAT_NAMES:
            set_slot("format", token, where, format=value)
            return None
        if value in FORMAT_ALIASES:
            real = FORMAT_ALIASES[value]
            warnings.append(
                _warn("format-alias", f"format={value} is read as format={real}", where)
            )
            set_slot("format", token, where, format=real)
            return None
        return describe(
            "bad-format",
            token,
            "format=" + "|".join(FORMAT_NAMES),
            where,
            suggestion=closest(token, [f"format={f}" for f in FORMAT_NAMES]),
        )
    if key == "metadata":
        if value in METADATA_POLICIES:
            set_slot("metadata", token, where, metadata=value)
            return None
        return describe(
            "bad-metadata",
            token,
            "metadata=strip|copyright|keep",
            where,
            suggestion=closest(token, [f"metadata={m}" for m in METADATA_POLICIES])
            or "metadata=strip",
        )
    if key == "timeout":
        if _NUMBER.match(value) and 0 < float(value) <= MAX_TIMEOUT:
            set_slot("timeout", token, where, timeout=float(value))
            return None
        return describe(
            "bad-timeout",
            token,
            f"timeout=SECONDS, a number above 0 and at most {MAX_TIMEOUT:g}",
            where,
            suggestion="timeout=30",
        )
    return describe(
        "unknown-token", token, EXPECTED_TOKEN, where, suggestion=closest(token, VOCABULARY)
    )


def _parse_size(token, match, where, set_slot) -> Problem | None:
    if match.group(3) is not None:
        width, height = int(match.group(3)), None
    else:
        width = int(match.group(1)) if match.group(1) is not None else None
        height = int(match.group(2))
    bad = [s for s in (width, height) if s is not None and not 1 <= s <= MAX_SIDE]
    if bad:
        fixed = (
            "x".join(
                str(min(max(s, 1), MAX_SIDE)) if s is not None else "" for s in (width, height)
            )
            if height is not None
            else str(min(max(width, 1), MAX_SIDE))
        )
        return describe(
            "size-out-of-range",
            token,
            f"sizes as W, WxH or xH with integers 1..{MAX_SIDE}",
            where,
            suggestion=fixed,
        )
    set_slot("size", token, where, width=width, height=height)
    return None


def point(token: str, value: str, where: str, prefix: str) -> tuple[Fraction, Fraction] | Problem:
    """A focal point `FXxFY`, both fractions in 0..1."""
    code = "bad-crop" if prefix == "crop=" else "bad-focus"
    focal = _FOCAL.match(value)
    if not focal:
        return describe(
            code,
            token,
            f"{prefix}FXxFY with FX and FY in 0..1",
            where,
            suggestion=f"{prefix}0.5x0.5",
        )
    fx, fy = Fraction(focal.group(1)), Fraction(focal.group(2))
    bad = [part for part, f in zip(focal.groups(), (fx, fy), strict=True) if not 0 <= f <= 1]
    if bad:
        return describe(
            code,
            token,
            f"focal point FXxFY with both in 0..1 (got {', '.join(bad)})",
            where,
            suggestion=f"{prefix}0.5x0.5",
        )
    return fx, fy


def _parse_aspect(token: str, value: str, where: str, set_slot) -> Problem | None:
    """`aspect=W:H`, kept in lowest terms (16:9 and 32:18 are one ratio, one canonical form)."""
    match = _ASPECT.match(value)
    loose = _ASPECT_LOOSE.match(value)
    if match is None:
        suggestion = f"aspect={loose.group(1)}:{loose.group(2)}" if loose else "aspect=16:9"
        return describe(
            "bad-aspect",
            token,
            "aspect=W:H with whole numbers (e.g. 16:9, 1:1)",
            where,
            suggestion=suggestion,
        )
    w, h = int(match.group(1)), int(match.group(2))
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        return describe(
            "bad-aspect",
            token,
            f"aspect=W:H with W and H from 1 to {MAX_SIDE}",
            where,
            suggestion="aspect=1:1",
        )
    ratio = Fraction(w, h)
    set_slot("aspect", token, where, aspect=(ratio.numerator, ratio.denominator))
    return None
