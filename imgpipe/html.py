"""HTML for srcset groups, rendered from manifest data alone (the only jinja2 importer).

Templates live in imgpipe/templates; a site's own `templates` directory is searched first, so
a file named `picture.html` there replaces ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from .formats import FORMATS

TEMPLATE = "picture.html"
_BUILTIN = Path(__file__).parent / "templates"


class Renderer:
    def __init__(self, templates: Path | None = None):
        search = [str(templates)] if templates else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*search, str(_BUILTIN)]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a typo in a user template fails loudly
            keep_trailing_newline=False,
        )
        self.env.globals["mime"] = lambda fmt: FORMATS[fmt].mime

    def fingerprint(self) -> str:
        """The template source, so snippets are re-rendered when a template changes."""
        source, _name, _uptodate = self.env.loader.get_source(self.env, TEMPLATE)
        return source

    def picture(self, source: Mapping[str, Any], group: str = "default", alt: str = "",
                sizes: str | None = None, **attrs: Any) -> str:
        """`<picture>` (or a lone `<img>`) for one srcset group of a manifest source entry."""
        srcsets = source.get("srcsets", {})
        if group not in srcsets:
            known = ", ".join(sorted(srcsets)) or "none"
            raise KeyError(f"no srcset group {group!r} (groups: {known})")
        entry = srcsets[group]
        template = self.env.get_template(TEMPLATE)
        return template.render(group=entry, source=source, alt=alt,
                               sizes=sizes or entry["sizes"], attrs=attrs) + "\n"


def snippet_path(relpath: str, group: str) -> str:
    """`blog/cat.jpg` + `default` → `blog/cat.jpg.default.html`. The source's extension stays
    in the name so `cat.jpg` and `cat.png` side by side never share a snippet."""
    rel = PurePosixPath(relpath)
    return str(rel.with_name(f"{rel.name}.{group}.html"))
