"""Per-image data: `[images."blog/cat.jpg"]` with `focus` (the focal point every crop of that
image keeps) and `alt` (the default alt text of its snippets and template helpers).

Kept in the config, not in sidecar files next to the images: a sidecar would be one more file
to stat per source in a no-op build, and one place for the data keeps every cache key a
function of the config and the source bytes alone. The focal point reaches the engine through
the option string (`Recipe.with_focus`), so it is part of the cache key like any option.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .errors import Problem, closest, describe
from .options import point
from .validate import Validator

IMAGE_KEYS = ("focus", "alt")


@dataclass(frozen=True)
class ImageData:
    focus: tuple[Fraction, Fraction] | None = None  # fractions of the autorotated image
    alt: str | None = None


def key(path: str) -> str:
    """`./blog/cat.jpg`, `/blog/cat.jpg` and `blog//cat.jpg` all name `blog/cat.jpg`."""
    return posixpath.normpath(path.strip().lstrip("/")).removeprefix("./")


def parse_images(v: Validator, raw: Any) -> dict[str, ImageData]:
    """The `[images]` table: paths relative to `source`, each a table of IMAGE_KEYS."""
    if not isinstance(raw, dict):
        v.type_error(raw, 'a table of [images."path"] tables', "images")
        return {}
    images: dict[str, ImageData] = {}
    for path, table in raw.items():
        where = f'images."{path}"'
        if not isinstance(table, dict):
            v.type_error(table, 'a table such as { focus = "0.5x0.3", alt = "..." }', where)
            continue
        v.unknown_keys(table, IMAGE_KEYS, where)
        alt = v.string(table, "alt", where)
        focus = v.string(table, "focus", where)
        found = point(focus, focus, f"{where}.focus", "") if focus is not None else None
        if isinstance(found, Problem):
            v.errors.append(found)
            continue
        images[key(path)] = ImageData(found, alt)
    return images


def unknown_images(images: Mapping[str, ImageData], relpaths: Iterable[str]) -> list[Problem]:
    """`[images."x"]` entries that name no discovered source: warnings, with the closest
    source path (a typo) or a source of the same name (a moved file)."""
    known = set(relpaths)
    problems = []
    for path in sorted(set(images) - known):
        by_name = [r for r in sorted(known) if posixpath.basename(r) == posixpath.basename(path)]
        problems.append(
            describe(
                "unknown-image",
                path,
                "the path of a source, relative to `source`",
                f'images."{path}"',
                suggestion=closest(path, known) or (by_name[0] if by_name else None),
            )
        )
    return problems
