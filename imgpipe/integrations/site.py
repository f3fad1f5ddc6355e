"""What the MkDocs, Pelican and Sphinx plugins share: plugin options → a Config, one build,
the manifest as the template API, and publishing renditions into the generator's output.

A plugin's renditions are built into its own work area (`<cache_dir>/site`, state in
`<cache_dir>/state`) and copied into the site from there, because both generators wipe their
output directory (MkDocs serves from a fresh temp dir, Pelican has DELETE_OUTPUT_DIRECTORY):
building straight into it would re-copy from the blob cache every time at best.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import build as builder
from ..config import PYPROJECT, Config, from_dict
from ..errors import ConfigError, Problem, closest, describe
from ..files import atomic_copy
from ..formats import SOURCE_EXTENSIONS
from ..globs import compile_globs, escape
from ..html import Images
from . import markdown, rewrite

log = logging.getLogger("imgpipe")

# Plain Markdown images: every format the engine reads (globs ignore case: IMG_0001.JPG too).
# An animation stays one: a srcset group of an animated source offers only the formats that
# keep the motion (animated WebP, GIF for `auto`, video when `formats` has webm or h264).
DEFAULT_INCLUDE = ("**/*.{" + ",".join(SOURCE_EXTENSIONS) + "}",)
DEFAULT_WIDTHS = (480, 800, 1200, 1600)
DEFAULT_FORMATS = ("avif", "webp", "auto")
# Inline plugin options that become one responsive-family rule.
RULE_OPTIONS = ("include", "exclude", "widths", "formats", "options", "sizes", "art")
# Plugin options that name a file or directory.
PATH_OPTIONS = ("config_file", "source", "cache_dir", "output_dir")
# Keys of an imgpipe.toml that the plugin decides itself: where things are written.
PLUGIN_OWNED = ("output", "cache_dir", "base_url", "manifest", "snippets")


@dataclass(frozen=True)
class SiteBuild:
    """The result of one build for a site: the template API and what to publish."""

    config: Config
    summary: builder.Summary
    images: Images

    def renditions(self) -> Iterator[tuple[str, Path]]:
        """(path relative to the published directory, built file) for every rendition."""
        for entry in self.images.sources.values():
            for rendition in entry["renditions"].values():
                yield rendition["path"], self.config.output / rendition["path"]

    def key_of(self, path: Path | str) -> str | None:
        """The manifest key of a file in the source tree, None when it is outside it."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(self.config.source)
        except ValueError:
            return None
        return rel.as_posix()


def check_options(options: Any, keys: tuple[str, ...], setting: str) -> list[Problem]:
    """A plugin setting given as a Python dict (Pelican's IMGPIPE, Sphinx's `imgpipe`): not a
    dict, or a path option (PATH_OPTIONS) that is not a string, raises ConfigError; each
    unknown key is a problem to warn about (with the closest)."""
    if not isinstance(options, Mapping):
        raise ConfigError(
            describe(
                "bad-type",
                str(options),
                'a dict of imgpipe options, e.g. {"widths": [480, 960]}',
                setting,
            )
        )
    for key in PATH_OPTIONS:
        value = options.get(key)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ConfigError(
                describe("bad-type", str(value), "a path, as a string", f"{setting}.{key}")
            )
    return [
        describe(
            "unknown-key", key, "one of " + ", ".join(keys), f"{setting}.{key}", closest(key, keys)
        )
        for key in options
        if key not in keys
    ]


def make_config(
    options: Mapping[str, Any],
    *,
    setting: str,
    root: Path,
    default_source: Path,
    cache_dir: Path,
    skip: tuple[Path, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Config:
    """A Config for a plugin: from `config_file` (an imgpipe.toml, or a pyproject.toml with
    [tool.imgpipe]) when given, else from the inline options. Either way the plugin decides
    where outputs and state go (PLUGIN_OWNED keys in the file are ignored). Directories in
    `skip` (the generator's own output, when it lies inside the source) and the globs in
    `exclude` (what the generator itself leaves out) are excluded by every rule, so
    renditions never become sources. Problems in inline options are named as the user wrote
    them, under `setting` (`imgpipe.widths`, not the rule key `rules[0].widths`). Raises
    ConfigError.
    """
    config_file = options.get("config_file")
    if config_file:
        path = Path(root, config_file)
        raw = dict(_read(path))
        base = path.resolve().parent
        if "source" not in raw:
            raw["source"] = str(default_source)
    else:
        path, base = None, root
        rule = {k: _plain(options[k]) for k in RULE_OPTIONS if options.get(k) is not None}
        rule.setdefault("include", list(DEFAULT_INCLUDE))
        rule.setdefault("widths", list(DEFAULT_WIDTHS))
        rule.setdefault("formats", list(DEFAULT_FORMATS))
        raw = {"source": str(options.get("source") or default_source), "rules": [rule]}
        if options.get("jobs") is not None:
            raw["jobs"] = options["jobs"]
    for key in PLUGIN_OWNED:
        raw.pop(key, None)
    if isinstance(raw.get("source"), str):
        _exclude(raw, Path(os.path.abspath(Path(base, raw["source"]))), skip, exclude)
    cache_dir = Path(os.path.abspath(cache_dir))
    raw.update(output=str(cache_dir / "site"), cache_dir=str(cache_dir / "state"), base_url="/")
    if path is not None:
        return from_dict(raw, base, path)
    try:
        config = from_dict(raw, base)
    except ConfigError as exc:
        raise ConfigError(
            [_named(p, setting) for p in exc.problems],
            tuple(_named(p, setting) for p in exc.warnings),
        ) from None
    return replace(config, warnings=tuple(_named(p, setting) for p in config.warnings))


def _named(problem: Problem, setting: str) -> Problem:
    """A problem of the config made from inline options, at the key the user wrote."""
    if not problem.where:
        return problem
    where = setting + "." + problem.where.removeprefix("rules[0].")
    return Problem(problem.code, problem.message.replace(problem.where, where), where)


def _exclude(
    raw: dict[str, Any], source: Path, skip: tuple[Path, ...], exclude: tuple[str, ...]
) -> None:
    patterns = list(exclude)
    for directory in skip:
        try:
            rel = Path(os.path.abspath(directory)).relative_to(source)
        except ValueError:
            continue
        patterns.append(f"{escape(rel.as_posix())}/**")
    rules = raw.get("rules")
    if not patterns or not isinstance(rules, list):
        return
    for rule in rules:
        # A rule's own exclude of the wrong type is left for the validator to report.
        if isinstance(rule, dict) and isinstance(rule.get("exclude", []), (list, tuple)):
            rule["exclude"] = [*rule.get("exclude", []), *patterns]


def _read(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(Problem("no-config", f"config file {path} does not exist"))
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(Problem("bad-toml", f"{path}: {exc}")) from None
    return raw.get("tool", {}).get("imgpipe", {}) if path.name == PYPROJECT else raw


def _plain(value: Any) -> Any:
    """YAML and Python settings give tuples and subclasses; the validator expects TOML types."""
    return list(value) if isinstance(value, (list, tuple)) else value


def check_outside(cache_dir: Path, **published: Path) -> None:
    """The cache must not be inside what the generator reads or publishes (it would be copied
    into the site, or wiped with it). Real paths: a symlink must not hide the overlap."""
    cache = Path(os.path.realpath(cache_dir))
    for name, directory in published.items():
        directory = Path(os.path.realpath(directory))
        if cache == directory or directory in cache.parents or cache in directory.parents:
            raise ConfigError(
                Problem(
                    "overlapping-dirs",
                    f"imgpipe cache_dir ({cache}) must be outside {name} ({directory})",
                    "cache_dir",
                )
            )


def run(config: Config) -> SiteBuild:
    """Build (incrementally) and load the manifest. Raises ConfigError, BuildLocked."""
    summary = builder.build(config)
    return SiteBuild(config, summary, Images(config.manifest, templates=config.templates))


def report(summary: builder.Summary, log: logging.Logger) -> None:
    """Failures and config warnings are warnings (so strict modes fail on them); an encoder's
    notes about one rendition are only informative."""
    log.info(
        "imgpipe: %d sources, %d renditions built, %d cached, %d failed (%.1f s)",
        summary.sources,
        summary.built,
        summary.cached,
        summary.failed,
        summary.seconds,
    )
    for issue in summary.failures:
        where = f"{issue.source} [{issue.label}]" if issue.label else issue.source
        log.warning(
            "imgpipe: %s failed at %s: %s: %s", where, issue.stage, issue.code, issue.message
        )
    for issue in summary.warnings:
        level = logging.WARNING if issue.stage == "config" else logging.INFO
        where = f"{issue.source}: " if issue.source else ""
        log.log(level, "imgpipe: %s%s: %s", where, issue.code, issue.message)


def publish(site: SiteBuild, directory: Path, clean: bool = True) -> int:
    """Copy renditions into `directory` (only those whose size or mtime differ) and, with
    `clean`, remove files there that are no longer renditions: the directory is imgpipe's.
    Returns the number of files copied."""
    wanted = dict(site.renditions())
    copied = 0
    for rel, built in wanted.items():
        dest = directory / rel
        st = built.stat()
        try:
            dst = dest.stat()
            if (dst.st_size, dst.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
                continue
        except FileNotFoundError:
            pass
        atomic_copy(built, dest)  # keeps the mtime, which the check above relies on
        copied += 1
    if clean and directory.is_dir():
        for path in directory.rglob("*"):
            if path.is_file() and path.relative_to(directory).as_posix() not in wanted:
                path.unlink()
    return copied


def relative_url(target_dir: str, from_dir: str) -> str:
    """URL prefix of `target_dir` as seen from a page in `from_dir` (both site-relative)."""
    rel = posixpath.relpath(target_dir or ".", from_dir or ".")
    return "" if rel == "." else rel + "/"


@dataclass(frozen=True)
class ImageLink:
    """What an `<img src>` in a generated page points at."""

    src: str  # as written
    path: str  # its URL path, percent-decoded
    target: str  # the file it names, relative to the site root
    root: str  # the site root as this link is written: "SITEURL/", "/sub/" or "../"


def image_link(
    src: str, page_dir: str, site_url: str = "", *, full_urls: bool = False
) -> ImageLink | None:
    """Resolve `src` on a page in `page_dir` (site-relative) of a site served at `site_url`;
    None for what is not a file of this site (http(s):, data:, //host, #fragment). With
    `full_urls`, `site_url`-absolute links (Pelican's SITEURL style) are the site's too."""
    site_url = site_url.rstrip("/")
    site_path = urlsplit(site_url).path.rstrip("/") + "/"
    if full_urls and site_url and src.startswith(site_url + "/"):
        path = unquote(urlsplit(src[len(site_url) + 1 :]).path)
        return ImageLink(src, path, path, site_url + "/")
    url = urlsplit(src)
    if url.scheme or url.netloc or not url.path:
        return None
    path = unquote(url.path)
    if path.startswith("/"):  # site-absolute, maybe under the site URL's path
        target = path[len(site_path) :] if path.startswith(site_path) else path[1:]
        return ImageLink(src, path, target, site_path)
    return ImageLink(
        src, path, posixpath.normpath(posixpath.join(page_dir, path)), relative_url("", page_dir)
    )


def picture_rewriter(
    built: SiteBuild,
    link_of: Callable[[str], ImageLink | None],
    source_of: Callable[[ImageLink], str | None],
    images_for: Callable[[ImageLink], Images],
    *,
    untouched: Callable[[ImageLink, int, str], None],
) -> rewrite.Replace:
    """What both plugins do with one `<img>` tag: resolve its link, find the source file the
    generator published there, and put a `<picture>` of its renditions in its place. Tags
    with their own srcset and links outside the site are kept as written; `source_of`
    returns None (and may warn) for a file it does not know. A file of the site that gets no
    `<picture>` is kept too, and `untouched(link, log level, reason)` says why (`left_as_is`).
    Make one per page: its first picture is not lazy (it is likely in the first viewport,
    where lazy loading delays the largest paint: `imgpipe audit`'s lazy-above-fold)."""
    first = True

    def replace(attrs: rewrite.Attrs) -> str | None:
        nonlocal first
        src = attrs.get("src")
        if not src or "srcset" in attrs:  # an author's own srcset is left alone
            return None
        link = link_of(src)
        if link is None:
            return None
        source = source_of(link)
        if source is None:
            return None
        why = left_as_is(built, source)
        if why is not None:
            untouched(link, *why)
            return None
        alt, sizes, rest = rewrite.call_arguments(attrs)
        if first:
            rest.setdefault("loading", False)  # the author's own loading= still wins
            first = False
        rest.pop(markdown.DATA_FOCUS, None)  # used before the build (integrations/markdown.py)
        group = rest.pop(markdown.DATA_ART, None)
        key = built.key_of(source)
        if group is not None and str(group) not in built.images.entry(key)["srcsets"]:
            log.warning("imgpipe: %s: no family named %r (data-art) for %s", src, group, key)
            group = None
        return images_for(link).picture(
            key, alt=alt, group=None if group is None else str(group), sizes=sizes, **rest
        )

    return replace


def left_as_is(built: SiteBuild, source: str) -> tuple[int, str] | None:
    """Why the image at `source` (a file the generator publishes) gets no `<picture>`, as (log
    level, reason); None when it has one. What the author can fix is a warning, so a strict
    build fails on it; what the build reported already, or was told to skip, is not."""
    config = built.config
    key = built.key_of(source)
    if key is None:
        return logging.WARNING, (
            f"it is outside imgpipe's source ({config.source}); "
            "set `source` to a directory that holds it"
        )
    entry = built.images.sources.get(key)
    if entry is not None:
        if entry.get("srcsets"):
            return None
        return logging.WARNING, (
            f"no rule that matches '{key}' has `widths`, so it has no srcset group; "
            "give its rule `widths` (a responsive family)"
        )
    summary = built.summary
    if any(issue.source == key and issue.label is None for issue in summary.failures):
        return logging.DEBUG, "it failed to build (reported above)"
    for issue in summary.warnings:
        if issue.source == key and issue.label is None:
            return logging.WARNING, f"{issue.code}: {issue.message}"
    extension = posixpath.splitext(key)[1].lower().lstrip(".")
    if extension == "svg":
        return logging.DEBUG, "an SVG is published as written (a vector needs no renditions)"
    if extension not in SOURCE_EXTENSIONS:
        return logging.WARNING, (
            f"imgpipe does not read .{extension} files (it reads {', '.join(SOURCE_EXTENSIONS)}); "
            "convert it to PNG or JPEG"
        )
    for rule in config.rules:
        if compile_globs(list(rule.include)).match(key):
            return logging.INFO, f"{rule.where}.exclude leaves it out"
    include = ", ".join(g for rule in config.rules for g in rule.include) or "none"
    return logging.WARNING, (
        f"no rule includes '{key}' (include: {include}); add a glob that matches it to `include`"
    )
