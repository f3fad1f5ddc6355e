"""Pelican plugin: images in articles and pages become responsive `<picture>`s.

    PLUGINS = ["pelican.plugins.imgpipe"]
    IMGPIPE = {"widths": [480, 960], "formats": ["avif", "webp", "auto"]}

Without IMGPIPE the plugin uses the project's imgpipe.toml (or `[tool.imgpipe]` in
pyproject.toml) in the directory Pelican runs from, else its default rules, and says which;
`IMGPIPE = False` turns it off. A bad setting is one error line, and the site is built without
the plugin (as Pelican does with a plugin it cannot load): a traceback would bury the message.
Signals, in the order Pelican sends them on each run:
- get_generators: build incrementally (state and renditions under CACHE_PATH, so a deleted
  output directory costs a copy, never an encode);
- generator_init: offer `picture`/`img` to the theme, under the page's SITEURL;
- static_generator_finalized: remember the static files, to map output URLs to sources;
- content_written: rewrite the `<img>` tags of the written page. The file on disk holds the
  final URLs ({static}/{attach} resolved, SITEURL or RELATIVE_URLS applied), and the
  renditions are written in the same style: absolute under SITEURL, or relative;
- finalized: copy the renditions into OUTPUT_PATH/<output_dir>.

A run's state travels with Pelican's own objects, not in this module: the settings (which
every generator shares) and the generators' shared context (which every written page's
context is copied from), so runs of several Pelican instances in one process never mix.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pelican import signals
from pelican.contents import Content

from ..config import find
from ..errors import ConfigError, ImgpipeError
from ..files import atomic_write
from ..html import install_originals
from . import markdown, rewrite, site

if TYPE_CHECKING:
    from pelican import Pelican
    from pelican.generators import Generator, StaticGenerator

log = logging.getLogger("pelican.plugins.imgpipe")

SETTING = "IMGPIPE"
_LINK_PREFIX = re.compile(r"^\{(static|attach|filename)\}")
RUN = "_imgpipe_run"  # where this run's _Run is kept in the settings and the context
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


def run_of(settings: Mapping[str, Any]) -> _Run | None:
    """The plugin's record of the run these settings (or a page's context) belong to."""
    return settings.get(RUN)


def register() -> None:
    signals.get_generators.connect(_build)
    signals.generator_init.connect(_install)
    signals.static_generator_finalized.connect(_remember_static)
    signals.content_written.connect(_rewrite_file)
    signals.finalized.connect(_publish)


def _build(pelican: Pelican) -> None:
    settings = pelican.settings
    settings.pop(RUN, None)  # an autoreload run that turned the plugin off
    options = settings.get(SETTING)
    if options is False:
        return
    try:
        options = _unset() if options is None else _checked(options)
        cache_dir = Path(options.get("cache_dir") or Path(settings["CACHE_PATH"], "imgpipe"))
        site.check_outside(cache_dir, OUTPUT_PATH=Path(settings["OUTPUT_PATH"]))
        config = site.make_config(
            options,
            setting=SETTING,
            root=Path.cwd(),
            default_source=Path(settings["PATH"]),
            cache_dir=cache_dir,
        )
        config, problems = markdown.with_focus(config, _focus_links(Path(settings["PATH"])))
        for problem in (*config.warnings, *problems):
            log.warning("imgpipe: %s", problem)
        built = site.run(config)
    except ImgpipeError as exc:
        for problem in exc.problems:
            log.error("imgpipe: %s", problem)
        return
    site.report(built.summary, log)
    settings[RUN] = _Run(settings, built, options.get("output_dir", "imgpipe").strip("/"))


def _unset() -> dict[str, Any]:
    """The options without IMGPIPE: the project's config file if there is one, else none
    (the defaults). Raises ConfigError for a config file that cannot be read."""
    try:
        path, _, _ = find(Path.cwd())
    except ConfigError as exc:
        if exc.code != "no-config":
            raise
        log.info(
            "imgpipe: %s is not set: every image under PATH (%s) gets widths %s and formats %s; "
            "set %s to choose, or %s = False to turn the plugin off",
            SETTING,
            ", ".join(site.DEFAULT_INCLUDE),
            ", ".join(map(str, site.DEFAULT_WIDTHS)),
            ", ".join(site.DEFAULT_FORMATS),
            SETTING,
            SETTING,
        )
        return {}
    log.info(
        "imgpipe: %s is not set: using the rules of %s; %s = False turns the plugin off",
        SETTING,
        path,
        SETTING,
    )
    return {"config_file": str(path)}


def _checked(options: Any) -> dict[str, Any]:
    """IMGPIPE as given: a dict (else ConfigError); unknown keys warn with a suggestion."""
    for problem in site.check_options(options, KEYS, SETTING):
        log.warning("imgpipe: %s", problem)
    return dict(options)


def _focus_links(content: Path) -> Iterator[markdown.Found]:
    """(page, image file, data-focus) for each Markdown image with a focal point. As Pelican
    reads links: `{static}`/`{attach}` paths from `/` are relative to PATH, others to the
    Markdown file (a plain relative path is tried there, then from PATH)."""
    for page in sorted(content.rglob("*.md")) + sorted(content.rglob("*.markdown")):
        for src, value in markdown.focus_links(page.read_text(encoding="utf-8")):
            path = unquote(urlsplit(_LINK_PREFIX.sub("", src)).path)
            places = (
                [content / path.lstrip("/")]
                if path.startswith("/")
                else [page.parent / path, content / path]
            )
            found = next((p for p in places if p.is_file()), None)
            yield page.relative_to(content).as_posix(), src, found, value


def _install(generator: Generator) -> None:
    run = run_of(generator.settings)
    # So that each written page's context carries this run (the context was copied from the
    # settings before this run began: it may hold the last one).
    generator.context[RUN] = run
    if not hasattr(generator, "env"):
        return
    if run is None:  # off, or a bad setting (said): a theme's `picture` shows the originals
        install_originals(generator.env, lambda context: f"{context.get('SITEURL', '')}/")
        return
    output_dir = run.output_dir

    def base_url(context: dict[str, Any]) -> str:
        # SITEURL is "" (site-absolute), a full URL, or with RELATIVE_URLS a path to the root.
        return f"{context.get('SITEURL', '')}/{output_dir}/"

    run.site.images.install(generator.env, base_url)


def _remember_static(generator: StaticGenerator) -> None:
    run = run_of(generator.settings)
    if run is not None:
        run.static = generator.staticfiles


def _rewrite_file(path: str, context: dict[str, Any]) -> None:
    run = run_of(context)
    if run is None or not path.endswith((".html", ".htm")):
        return
    rel = Path(os.path.abspath(path)).relative_to(run.output_path.resolve()).as_posix()
    page_dir = posixpath.dirname(rel)
    content = context.get("article") or context.get("page")
    page = content.relative_source_path if isinstance(content, Content) else None

    def source_of(link: site.ImageLink) -> str | None:
        source = run.source_of(link.target)
        if source is None and page and not (run.output_path / link.target).exists():
            log.warning(
                "imgpipe: %s uses image '%s', but '%s' is not in the output; "
                "is it under STATIC_PATHS?",
                page,
                link.src,
                link.target,
            )
        return source

    def untouched(link: site.ImageLink, level: int, reason: str) -> None:
        # Said once, on the article or page itself; index and archive pages repeat its images.
        if page:
            log.log(
                level, "imgpipe: %s uses image '%s', left as written: %s", page, link.target, reason
            )

    # Renditions are linked in the style of the tag they replace: SITEURL-absolute,
    # site-absolute or relative.
    replace = site.picture_rewriter(
        run.site,
        lambda src: site.image_link(src, page_dir, run.settings.get("SITEURL", ""), full_urls=True),
        source_of,
        lambda link: run.site.images.rebase(f"{link.root}{run.output_dir}/"),
        untouched=untouched,
    )
    html = Path(path).read_text(encoding="utf-8")
    new = rewrite.rewrite_images(html, replace)
    if new != html:
        atomic_write(path, new.encode("utf-8"))


def _publish(pelican: Pelican) -> None:
    run = run_of(pelican.settings)
    if run is not None:
        site.publish(run.site, run.output_path / run.output_dir)
