"""Pelican plugin: images in articles and pages become responsive `<picture>`s.

    PLUGINS = ["pelican.plugins.imgpipe"]
    IMGPIPE = {"widths": [480, 960], "formats": ["avif", "webp", "auto"]}

Nothing happens unless IMGPIPE is set (Pelican loads every installed namespace plugin when
PLUGINS is not set). Signals, in the order Pelican sends them on each run:
- get_generators: build incrementally (state and renditions under CACHE_PATH, so a deleted
  output directory costs a copy, never an encode);
- generator_init: offer `picture`/`img` to the theme, under the page's SITEURL;
- static_generator_finalized: remember the static files, to map output URLs to sources;
- content_written: rewrite the `<img>` tags of the written page. The file on disk holds the
  final URLs ({static}/{attach} resolved, SITEURL or RELATIVE_URLS applied), and the
  renditions are written in the same style: absolute under SITEURL, or relative;
- finalized: copy the renditions into OUTPUT_PATH/<output_dir>.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pelican import signals
from pelican.contents import Content

from ..errors import closest, describe
from ..files import atomic_write
from . import rewrite, site

if TYPE_CHECKING:
    from pelican import Pelican
    from pelican.generators import Generator, StaticGenerator

log = logging.getLogger("pelican.plugins.imgpipe")

SETTING = "IMGPIPE"
KEYS = ("config_file", *site.RULE_OPTIONS, "source", "jobs", "cache_dir", "output_dir")


@dataclass
class _Run:
    """One Pelican run (autoreload runs many in one process)."""

    settings: dict[str, Any]
    site: site.SiteBuild
    output_dir: str
    static: list[Content] = field(default_factory=list)
    _sources: dict[str, str] = field(default_factory=dict)  # output path -> source path

    @property
    def output_path(self) -> Path:
        return Path(self.settings["OUTPUT_PATH"])

    def source_of(self, target: str) -> str | None:
        """The source file that Pelican copies to output path `target`, if any."""
        if target not in self._sources:
            # Read save_as through Content's property: Static's own marks the location as
            # referenced, which would stop a later {attach} from moving the file.
            self._sources = {super(type(s), s).save_as: s.source_path for s in self.static}
        return self._sources.get(target)


_current: _Run | None = None


def register() -> None:
    signals.get_generators.connect(_build)
    signals.generator_init.connect(_install)
    signals.static_generator_finalized.connect(_remember_static)
    signals.content_written.connect(_rewrite_file)
    signals.finalized.connect(_publish)


def _build(pelican: Pelican) -> None:
    global _current
    _current = None
    options = pelican.settings.get(SETTING)
    if options is None or options is False:
        return
    if not isinstance(options, dict):
        raise ValueError(describe("bad-type", str(options), "a dict of imgpipe options",
                                  SETTING).message)
    for key in options:
        if key not in KEYS:
            log.warning("imgpipe: %s", describe("unknown-key", key, "one of " + ", ".join(KEYS),
                                                f"{SETTING}.{key}", closest(key, KEYS)))
    settings = pelican.settings
    cache_dir = Path(options.get("cache_dir") or Path(settings["CACHE_PATH"], "imgpipe"))
    site.check_outside(cache_dir, OUTPUT_PATH=Path(settings["OUTPUT_PATH"]))
    config = site.make_config(options, root=Path.cwd(), default_source=Path(settings["PATH"]),
                              cache_dir=cache_dir)
    for problem in config.warnings:
        log.warning("imgpipe: %s", problem)
    built = site.run(config)
    site.report(built.summary, log)
    _current = _Run(settings, built, options.get("output_dir", "imgpipe").strip("/"))


def _install(generator: Generator) -> None:
    run = _current
    if run is None or not hasattr(generator, "env"):
        return
    output_dir = run.output_dir

    def base_url(context: dict[str, Any]) -> str:
        # SITEURL is "" (site-absolute), a full URL, or with RELATIVE_URLS a path to the root.
        return f"{context.get('SITEURL', '')}/{output_dir}/"

    run.site.images.install(generator.env, base_url)


def _remember_static(generator: StaticGenerator) -> None:
    if _current is not None:
        _current.static = generator.staticfiles


def _rewrite_file(path: str, context: dict[str, Any]) -> None:
    run = _current
    if run is None or not path.endswith((".html", ".htm")):
        return
    rel = Path(os.path.abspath(path)).relative_to(run.output_path.resolve()).as_posix()
    page_dir = posixpath.dirname(rel)
    content = context.get("article") or context.get("page")
    page = content.relative_source_path if isinstance(content, Content) else None
    siteurl = run.settings.get("SITEURL", "").rstrip("/")
    site_path = urlsplit(siteurl).path.rstrip("/") + "/"

    def replace(attrs: rewrite.Attrs) -> str | None:
        src = attrs.get("src")
        if not src or "srcset" in attrs:
            return None
        if siteurl and src.startswith(siteurl + "/"):  # SITEURL-absolute
            prefix, target = siteurl + "/", unquote(urlsplit(src[len(siteurl) + 1:]).path)
        else:
            url = urlsplit(src)
            if url.scheme or url.netloc or not url.path:  # external, data:, fragment
                return None
            path_part = unquote(url.path)
            if path_part.startswith("/"):  # site-absolute, maybe under SITEURL's path
                prefix = site_path
                target = path_part[len(site_path):] if path_part.startswith(site_path) \
                    else path_part[1:]
            else:
                prefix = site.relative_url("", page_dir)
                target = posixpath.normpath(posixpath.join(page_dir, path_part))
        source = run.source_of(target)
        if source is None:
            if page and not (run.output_path / target).exists():
                log.warning("imgpipe: %s uses image '%s', but '%s' is not in the output; "
                            "is it under STATIC_PATHS?", page, src, target)
            return None
        key = run.site.key_of(source)
        if key is None or key not in run.site.images:  # not covered by the rules (svg, ...)
            return None
        alt, sizes, rest = rewrite.call_arguments(attrs)
        images = run.site.images.rebase(f"{prefix}{run.output_dir}/")
        return images.picture(key, alt=alt, sizes=sizes, **rest)

    html = Path(path).read_text(encoding="utf-8")
    new = rewrite.rewrite_images(html, replace)
    if new != html:
        atomic_write(path, new.encode("utf-8"))


def _publish(pelican: Pelican) -> None:
    if _current is not None:
        site.publish(_current.site, _current.output_path / _current.output_dir)
