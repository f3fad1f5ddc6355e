"""Focal points and art picks written in Markdown, for the MkDocs and Pelican plugins:

    ![A cat](cat.jpg){ data-focus="0.3x0.7" }     the focal point of cat.jpg (every crop)
    ![A cat](cat.jpg){ data-art="hero" }           its <picture> from the family named hero

(attr_list syntax: MkDocs needs `markdown_extensions: [attr_list]`; Pelican's default Markdown
extensions include it.) A focal point changes pixels, so it must be known before the build,
which runs before any page is rendered: the plugins scan the Markdown sources for it first
(`focus_links`). The art pick only chooses markup, so the rewriter reads it from the rendered
`<img>` (`DATA_ART`). `[images."path"] focus` in an imgpipe.toml wins over a page's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from ..config import Config
from ..errors import Problem, describe
from ..image_data import ImageData
from ..options import point

DATA_FOCUS = "data-focus"
DATA_ART = "data-art"

# `![alt](path "title"){ attrs }`: the path may sit in <...>; the attribute list follows
# the image directly (attr_list's rule for inline elements).
_IMAGE = re.compile(
    r"!\[[^\]\n]*\]\(\s*<?(?P<src>[^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)\{(?P<attrs>[^}\n]*)\}"
)
_FOCUS = re.compile(r"""(?:^|\s)data-focus\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


def focus_links(text: str) -> Iterator[tuple[str, str]]:
    """(image path as written, data-focus value) of each Markdown image that has one."""
    for image in _IMAGE.finditer(text):
        found = _FOCUS.search(image.group("attrs"))
        if found:
            yield image.group("src"), next(g for g in found.groups() if g is not None)


# What a plugin found in one page: (page, image link as written, the file it names or None,
# the data-focus value).
Found = tuple[str, str, Path | None, str]


def with_focus(config: Config, found: Iterable[Found]) -> tuple[Config, list[Problem]]:
    """`config` with the focal points found in pages. Bad values, links to no source and
    conflicts are warnings naming the page."""
    images = dict(config.images)
    problems: list[Problem] = []
    for page, src, path, value in found:
        where = f"{page}: {DATA_FOCUS}"
        focus = point(value, value, where, "")
        if isinstance(focus, Problem):
            problems.append(focus)
            continue
        rel = _relative(path, config.source) if path is not None else None
        if rel is None:
            problems.append(
                describe("unknown-image", src, "an image under the source directory", where)
            )
            continue
        current = images.get(rel, ImageData())
        if current.focus is not None and current.focus != focus:
            if rel not in config.images:  # two pages disagree; the first one stays
                problems.append(
                    Problem("focus-conflict", f"{where}: {rel} already has another focus", where)
                )
            continue
        images[rel] = replace(current, focus=focus)
    return replace(config, images=images), problems


def _relative(path: Path, source: Path) -> str | None:
    try:
        return Path(os.path.normpath(path)).relative_to(source).as_posix()
    except ValueError:
        return None
