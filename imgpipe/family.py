"""Responsive families: a rule's `widths` x `formats` (one srcset group), and its art
direction variants (`[[rules.art]]`), each a `<source media>` of the same `<picture>`.

    [[rules]]
    include = ["blog/*.jpg"]
    widths = [480, 960, 1600]
    formats = ["avif", "webp", "jpeg"]
    sizes = "(min-width: 60rem) 60rem, 100vw"

    [[rules.art]]
    media = "(max-width: 600px)"
    aspect = "1:1"
    widths = [360, 720]
    sizes = "100vw"           # optional: the family's
    options = "quality=high"  # optional: added to the family's

A variant renders in the family's formats with the family's options, its own options and its
aspect; its labels are the family's with `art<N>-` in front of the width (`art1-360-webp`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import Problem, describe
from .formats import AUTO, FORMATS
from .options import MAX_SIDE, Recipe, parse_tokens
from .validate import Validator

DEFAULT_GROUP = "default"
# Labels become parts of file names, so they stay in a portable alphabet.
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
FAMILY_KEYS = ("widths", "formats", "options", "sizes", "name", "art")
ART_KEYS = ("media", "aspect", "widths", "sizes", "options")

Expand = Callable[[str], str]  # preset names in an option string -> their options


@dataclass(frozen=True)
class RenditionSpec:
    """One named rendition a rule asks for."""

    label: str
    recipe: Recipe
    where: str  # key path, for messages
    group: str | None = None  # srcset group when it comes from a responsive family
    width: int | None = None  # the family width (CSS px) it stands for
    art: int | None = None  # the art direction variant (1-based) it belongs to
    # Which sources it is for: True only animated ones, False only still ones, None any
    # (`motion_of`).
    motion: bool | None = None


@dataclass(frozen=True)
class ArtSpec:
    """An art direction variant: its renditions are shown when `media` matches."""

    number: int  # 1-based, as in labels
    media: str
    sizes: str
    widths: tuple[int, ...]


@dataclass(frozen=True)
class SrcsetSpec:
    """A responsive family: widths x formats sharing options and a `sizes` attribute."""

    name: str
    sizes: str
    widths: tuple[int, ...]
    formats: tuple[str, ...]
    art: tuple[ArtSpec, ...] = ()

    def label(self, width: int, fmt: str, art: int | None = None) -> str:
        core = f"{width}-{fmt}" if art is None else f"art{art}-{width}-{fmt}"
        return core if self.name == DEFAULT_GROUP else f"{self.name}-{core}"


def parse_family(
    v: Validator, raw: dict, where: str, expand: Expand, renditions: list[RenditionSpec]
) -> SrcsetSpec | None:
    """The family of rule `raw` (None if it has none); its members join `renditions`."""
    if not any(k in raw for k in FAMILY_KEYS):
        return None
    if "widths" not in raw:
        v.errors.append(
            Problem(
                "missing-key", "'widths' is required for a responsive family", f"{where}.widths"
            )
        )
        return None
    widths = v.int_list(raw, "widths", where, low=1, high=MAX_SIDE)
    formats = v.string_list(raw, "formats", where, choices=(AUTO, *FORMATS)) or [AUTO]
    options = v.string(raw, "options", where, default="") or ""
    sizes = v.string(raw, "sizes", where, default="100vw") or "100vw"
    name = v.string(raw, "name", where, default=DEFAULT_GROUP) or DEFAULT_GROUP
    if not LABEL.match(name):
        v.errors.append(
            describe("bad-label", name, "a name of letters, digits, - and _", f"{where}.name")
        )
    tokens = _tokens(v, expand(options), f"{where}.options")
    if widths is None or tokens is None:
        return None
    spec = SrcsetSpec(name, sizes, tuple(widths), tuple(formats))
    renditions.extend(_members(v, spec, tokens, widths, f"{where}.options", f"{where}.widths"))
    art = _art(v, raw.get("art", []), where, expand, spec, expand(options), renditions)
    return replace(spec, art=art)


def _art(
    v: Validator,
    raw: Any,
    where: str,
    expand: Expand,
    family: SrcsetSpec,
    family_options: str,
    renditions: list[RenditionSpec],
) -> tuple[ArtSpec, ...]:
    if not isinstance(raw, list):
        v.type_error(raw, "an array of tables ([[rules.art]])", f"{where}.art")
        return ()
    variants = []
    for index, table in enumerate(raw):
        path = f"{where}.art[{index}]"
        if not isinstance(table, dict):
            v.type_error(table, "a table", path)
            continue
        v.unknown_keys(table, ART_KEYS, path)
        for required in ("media", "widths"):
            if required not in table:
                v.errors.append(
                    Problem("missing-key", f"{required!r} is required for art direction", path)
                )
        if "media" not in table or "widths" not in table:
            continue
        media = v.string(table, "media", path)
        sizes = v.string(table, "sizes", path, default=family.sizes)
        widths = v.int_list(table, "widths", path, low=1, high=MAX_SIDE)
        aspect = v.string(table, "aspect", path)
        options = expand(v.string(table, "options", path, default="") or "")
        ok_aspect = aspect is None or v.recipe(f"aspect={aspect}", f"{path}.aspect") is not None
        ok_options = _tokens(v, options, f"{path}.options") is not None
        if None in (media, sizes, widths) or not (ok_aspect and ok_options):
            continue
        # The family's tokens, then the variant's (which win), then its aspect. Each part's
        # warnings were given above, once; a member adds only what settling it says.
        text = ",".join(p for p in (family_options, options, aspect and f"aspect={aspect}") if p)
        tokens = replace(parse_tokens(text), warnings=()) if text.strip() else Recipe()
        variant = ArtSpec(index + 1, media, sizes, tuple(widths))
        renditions.extend(
            _members(v, family, tokens, widths, f"{path}.options", f"{path}.widths", variant.number)
        )
        variants.append(variant)
    return tuple(variants)


def _tokens(v: Validator, options: str, where: str) -> Recipe | None:
    """A family's (or variant's) options: any tokens but a size or a format."""
    if not options.strip():
        return Recipe()
    base = v.recipe(options, where)  # errors, and the warnings of the string itself
    if base is None:
        return None
    if base.width or base.height or base.format != AUTO:
        v.errors.append(
            describe(
                "family-options",
                options,
                "options without a size or format: `widths` and `formats` set those",
                where,
            )
        )
        return None
    return parse_tokens(options)


def _members(
    v: Validator,
    spec: SrcsetSpec,
    tokens: Recipe,
    widths: list[int],
    where: str,
    widths_where: str,
    art: int | None = None,
) -> list[RenditionSpec]:
    # Each member is the options' tokens with its width and format set, then settled as a
    # parsed string would be (a density or a crop means something once the width is there).
    return [
        RenditionSpec(
            spec.label(w, fmt, art),
            v.settled(replace(tokens, width=w, format=fmt), where),
            widths_where,
            group=spec.name,
            width=w,
            art=art,
            motion=motion_of(fmt, spec.formats),
        )
        for w in widths
        for fmt in spec.formats
    ]


def motion_of(fmt: str, formats: tuple[str, ...]) -> bool | None:
    """Which sources a family's `fmt` member is for. A video is made of an animation, so a
    still source skips it; a format that holds one frame (AVIF, JPEG, PNG) would stop an
    animation, so an animated source skips it when the family has a format that moves
    (the manifest offers an animation only those). None: every source."""
    if fmt == AUTO:
        return None
    if FORMATS[fmt].video:
        return True
    moves = any(f == AUTO or FORMATS[f].animated for f in formats)
    return False if moves and not FORMATS[fmt].animated else None
