"""MkDocs plugin `imgpipe`: Markdown images from docs_dir become responsive `<picture>`s.

    plugins:
      - imgpipe:
          widths: [480, 960]
          formats: [avif, webp, auto]
          sizes: "(min-width: 60rem) 45rem, 100vw"

Events, in the order MkDocs sends them:
- load_config: MkDocs validates the keys (a misspelt one gets the closest known key);
- on_config: validate the options into an imgpipe Config (errors stop the build here);
- on_files: build incrementally, add each rendition as a generated file under `output_dir`;
- on_env: offer `picture`/`img` to the theme, with URLs relative to the page being rendered;
- on_page_content (priority -100): rewrite `<img>` tags. It runs after every plugin with the
  default priority, so a lightbox plugin's `<a>` wrapper ends up around the `<picture>`,
  never inside it. A local image left as written is logged with the reason (site.left_as_is);
  a warning when the author can fix it, so `--strict` fails;
- on_serve: also watch the imgpipe.toml (and a source outside docs_dir).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from ..config import Config
from ..errors import ImgpipeError, closest
from . import markdown, rewrite, site

if TYPE_CHECKING:  # jinja2 and livereload are MkDocs' to import; only their types are used
    from jinja2 import Environment
    from mkdocs.livereload import LiveReloadServer

log = logging.getLogger("mkdocs.plugins.imgpipe")


class ImgpipeConfig(base.Config):
    enabled = c.Type(bool, default=True)
    config_file = c.Optional(c.Type(str))  # an imgpipe.toml, relative to mkdocs.yml
    source = c.Optional(c.Type(str))  # default: docs_dir
    include = c.Optional(c.ListOfItems(c.Type(str)))
    exclude = c.Optional(c.ListOfItems(c.Type(str)))
    widths = c.Optional(c.ListOfItems(c.Type(int)))
    formats = c.Optional(c.ListOfItems(c.Type(str)))
    options = c.Optional(c.Type(str))
    sizes = c.Optional(c.Type(str))
    art = c.Optional(c.ListOfItems(c.Type(dict)))  # [[rules.art]] variants of the family
    jobs = c.Optional(c.Type(int))
    cache_dir = c.Type(str, default=".imgpipe-cache")  # relative to mkdocs.yml
    output_dir = c.Type(str, default="imgpipe")  # where renditions go, relative to site_dir


class ImgpipePlugin(BasePlugin[ImgpipeConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        super().__init__()
        self.site: site.SiteBuild | None = None
        self.imgpipe_config: Config | None = None
        self._by_url: dict[str, File] = {}

    def load_config(
        self, options: dict[str, Any], config_file_path: str | None = None
    ) -> tuple[Any, Any]:
        """MkDocs' own validation, with the closest known key after an unknown one."""
        errors, warnings = super().load_config(options, config_file_path)
        known = [name for name, _ in base.get_schema(ImgpipeConfig)]
        for i, (key, message) in enumerate(warnings):
            guess = closest(key, known) if message.startswith("Unrecognised") else None
            if guess:
                warnings[i] = (key, f"{message}; did you mean {guess!r}?")
        return errors, warnings

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        root = Path(config.config_file_path or ".").resolve().parent
        cache_dir = root / self.config.cache_dir
        try:
            site.check_outside(
                cache_dir, docs_dir=Path(config.docs_dir), site_dir=Path(config.site_dir)
            )
            self.imgpipe_config = site.make_config(
                dict(self.config),
                setting="imgpipe",
                root=root,
                default_source=Path(config.docs_dir),
                cache_dir=cache_dir,
            )
        except ImgpipeError as exc:
            raise PluginError(f"imgpipe: {exc}") from None
        for problem in self.imgpipe_config.warnings:
            log.warning("imgpipe: %s", problem)
        return None

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files | None:
        if self.imgpipe_config is None:
            return None
        focused, problems = markdown.with_focus(self.imgpipe_config, self._focus_links(files))
        for problem in problems:
            log.warning("imgpipe: %s", problem)
        try:
            self.site = site.run(focused)
        except ImgpipeError as exc:
            raise PluginError(f"imgpipe: {exc}") from None
        site.report(self.site.summary, log)
        self._by_url = {f.dest_uri: f for f in files}
        for rel, built in self.site.renditions():
            files.append(
                File.generated(config, f"{self.config.output_dir}/{rel}", abs_src_path=str(built))
            )
        return files

    @staticmethod
    def _focus_links(files: Files) -> Iterator[markdown.Found]:
        """(page, image file, data-focus) for each Markdown image with a focal point. Links
        are relative to the Markdown file, or to docs_dir when they start with `/`."""
        for file in files.documentation_pages():
            if file.abs_src_path is None:
                continue
            for src, value in markdown.focus_links(file.content_string):
                path = unquote(urlsplit(src).path)
                rel = (
                    path.lstrip("/")
                    if path.startswith("/")
                    else posixpath.join(posixpath.dirname(file.src_uri), path)
                )
                target = files.get_file_from_path(posixpath.normpath(rel))
                abs_path = target.abs_src_path if target is not None else None
                yield file.src_uri, src, Path(abs_path) if abs_path else None, value

    def on_env(self, env: Environment, *, config: MkDocsConfig, files: Files) -> Environment | None:
        if self.site is None:
            return None
        output_dir = self.config.output_dir

        def base_url(context: Mapping[str, Any]) -> str:
            # MkDocs' per-page `base_url` is relative ("..") for pages, absolute for 404.html.
            page_base = context.get("base_url") or "."
            return f"{page_base.rstrip('/')}/{output_dir}/"

        self.site.images.install(env, base_url)
        return env

    @event_priority(-100)
    def on_page_content(
        self, html: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if self.site is None:
            return None
        # MkDocs has already made links relative to the page's URL (`sub/page/` with
        # use_directory_urls, `sub/page.html` without), so that is what src is resolved from.
        page_dir = page.url.rstrip("/") if page.url.endswith("/") else posixpath.dirname(page.url)
        prefix = site.relative_url(self.config.output_dir, page_dir)
        images = self.site.images.rebase(prefix)

        def source_of(link: site.ImageLink) -> str | None:
            file = self._by_url.get(link.target)
            if file is None or file.abs_src_path is None:
                # MkDocs leaves a link it cannot resolve as written: relative to the Markdown
                # file, not to the page URL, so that is where the author looked for it.
                written = (
                    posixpath.normpath(
                        posixpath.join(posixpath.dirname(page.file.src_uri), link.path)
                    )
                    if not link.path.startswith("/")
                    else link.target
                )
                self._missing(page, link.src, written)
                return None
            return file.abs_src_path

        def untouched(link: site.ImageLink, level: int, reason: str) -> None:
            log.log(
                level,
                "imgpipe: page '%s' uses image '%s', left as written: %s",
                page.file.src_uri,
                link.target,
                reason,
            )

        replace = site.picture_rewriter(
            self.site,
            lambda src: site.image_link(src, page_dir, config.site_url or ""),
            source_of,
            lambda _link: images,
            untouched=untouched,
        )
        return rewrite.rewrite_images(html, replace)

    def _missing(self, page: Page, src: str, target: str) -> None:
        media = [u for u, f in self._by_url.items() if f.is_media_file()]
        guess = closest(target, media)
        hint = f"; did you mean '{guess}'?" if guess else ""
        log.warning(
            "imgpipe: page '%s' uses image '%s', but '%s' is not in the docs%s",
            page.file.src_uri,
            src,
            target,
            hint,
        )

    def on_serve(
        self, server: LiveReloadServer, *, config: MkDocsConfig, builder: Any
    ) -> LiveReloadServer:
        if self.imgpipe_config is None:
            return server
        # mkdocs.yml and docs_dir are watched already; a separate imgpipe.toml and a source
        # outside docs_dir are not, and a change there must rebuild the renditions.
        if self.config.config_file:
            server.watch(str(self.imgpipe_config.path))
        docs = Path(config.docs_dir).resolve()
        source = self.imgpipe_config.source
        if source != docs and docs not in source.parents and source.is_dir():
            server.watch(str(source))
        return server
