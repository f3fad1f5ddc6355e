"""Sphinx extension: `image` and `figure` directives (and MyST images) become responsive
`<picture>`s in the HTML builders.

    extensions = ["imgpipe.integrations.sphinx"]
    imgpipe = {"widths": [480, 960], "formats": ["avif", "webp", "auto"]}

The `imgpipe` dict takes the Pelican plugin's keys with the same meaning (`config_file`, an
imgpipe.toml relative to conf.py, or the inline rule: include, exclude, widths, formats,
options, sizes; jobs; cache_dir). What happens, in the order Sphinx does it:
- builder-inited: for an HTML builder (html, dirhtml, singlehtml) the options become an
  imgpipe Config (a bad value is one error line naming the key, and the build, with the
  original images, fails). Sphinx's build folders and `exclude_patterns`
  are left out of the sources: `_build` often lies inside the documentation folder. Other
  builders (latex, epub, ...) never see imgpipe and keep the original images;
- env-updated (after reading, in the main process even with -j): build incrementally, with
  state and blobs under the doctree folder, so a rebuild encodes nothing; copy the renditions
  to `_images/imgpipe/`; and have every document whose images' renditions changed written
  again (Sphinx itself re-reads a document when an image it uses is edited: images are
  dependencies of their documents, which is what sphinx-autobuild acts on);
- writing: the HTML translator's image visitor puts the `<picture>` in place. With -j, write
  workers are forked from the main process and inherit its build.
The imgpipe build holds the cache dir's lock (imgpipe/lock.py), so two Sphinx processes
sharing a doctree folder take turns.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from docutils import nodes
from sphinx.util import logging

from ..config import Config
from ..errors import ImgpipeError
from . import site

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.builders import Builder
    from sphinx.environment import BuildEnvironment
    from sphinx.writers.html5 import HTML5Translator

log = logging.getLogger(__name__)

SETTING = "imgpipe"
KEYS = ("config_file", *site.RULE_OPTIONS, "jobs", "cache_dir")
HTML_BUILDERS = frozenset({"html", "dirhtml", "singlehtml"})
OUTPUT_DIR = "imgpipe"  # under the builder's image folder (_images)
_DIGESTS = "imgpipe_digests"  # on the environment: builder -> manifest key -> entry digest


@dataclass
class _Run:
    """This Sphinx process's imgpipe build, for one builder."""

    config: Config
    site: site.SiteBuild | None = None


_runs: WeakKeyDictionary[Builder, _Run] = WeakKeyDictionary()


def setup(app: Sphinx) -> dict[str, Any]:
    # "html": a changed value has the HTML builders write every page again.
    app.add_config_value(SETTING, {}, "html", types=frozenset({dict}))
    app.connect("builder-inited", _configure)
    app.connect("env-updated", _build)
    # Registered for the html format: epub falls back to it too, and is told apart at visit.
    app.add_node(nodes.image, override=True, html=(_visit_image, _depart_image))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def _configure(app: Sphinx) -> None:
    builder = app.builder
    options = app.config[SETTING]
    if builder.name not in HTML_BUILDERS or options is None or options is False:
        return
    confdir = Path(app.confdir)
    try:
        for problem in site.check_options(options, KEYS, SETTING):
            log.warning("imgpipe: %s", problem, type="imgpipe", subtype="config")
        cache_dir = Path(confdir, options.get("cache_dir") or Path(app.doctreedir, "imgpipe"))
        config = site.make_config(
            options,
            setting=SETTING,
            root=confdir,
            default_source=Path(app.srcdir),
            cache_dir=cache_dir,
            skip=(Path(app.outdir), Path(app.doctreedir)),
            # What Sphinx leaves out (`_build`, with other builders' output) is no source.
            exclude=tuple(
                g for p in app.config.exclude_patterns for g in (_literal(p), f"{_literal(p)}/**")
            ),
        )
    except ImgpipeError as exc:
        _failed(app, exc)
        return
    for problem in config.warnings:
        log.warning("imgpipe: %s", problem, type="imgpipe", subtype="config")
    _runs[builder] = _Run(config)


def _failed(app: Sphinx, exc: ImgpipeError) -> None:
    """One error line per problem, naming the key, and a failed build (exit status 1), which
    goes on with the original images, as with the builders that are not HTML. A raised
    SphinxError would bury the line in Sphinx's crash report (versions, traceback, "please
    report this")."""
    for problem in exc.problems:
        log.error("imgpipe: %s", problem, type="imgpipe", subtype="config")
    app.statuscode = 1


def _literal(pattern: str) -> str:
    """A Sphinx glob (no `{a,b}` alternatives) as an imgpipe glob."""
    return "".join(f"[{c}]" if c in "{}," else c for c in pattern)


def _build(app: Sphinx, env: BuildEnvironment) -> list[str]:
    run = _runs.get(app.builder)
    if run is None:
        return []
    try:
        run.site = site.run(run.config)
    except ImgpipeError as exc:
        _failed(app, exc)
        return []
    site.report(run.site.summary, log)
    site.publish(run.site, Path(app.builder.outdir, app.builder.imagedir, OUTPUT_DIR))
    # A document is written again when the renditions of an image it shows have changed
    # (a new rule, an edited imgpipe.toml): Sphinx cannot know, its sources are untouched.
    # Per builder: html and dirhtml may share one environment (`sphinx-build -M`).
    digests: dict[str, dict[str, str]] = getattr(env, _DIGESTS, {})
    old = digests.get(app.builder.name, {})
    new = {key: _digest(entry) for key, entry in run.site.images.sources.items()}
    setattr(env, _DIGESTS, {**digests, app.builder.name: new})
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    again: set[str] = set()
    for filename, (docnames, _unique) in env.images.items():
        if run.site.key_of(Path(app.srcdir, filename)) in changed:
            again |= docnames
    return sorted(again)


def _digest(entry: Any) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def _visit_image(self: HTML5Translator, node: nodes.image) -> None:
    markup = _picture(self, node)
    if markup is None:
        type(self).visit_image(self, node)  # the translator's own: Sphinx's or a theme's
        return
    self.body.append(markup)
    raise nodes.SkipNode


def _depart_image(self: HTML5Translator, node: nodes.image) -> None:
    type(self).depart_image(self, node)


def _picture(self: HTML5Translator, node: nodes.image) -> str | None:
    """The `<picture>` for an image node, or None where Sphinx's own `<img>` stays: another
    builder, a remote or embedded image, one the rules do not cover (SVG, GIF...)."""
    run = _runs.get(self.builder)
    uri = node["uri"]
    if run is None or run.site is None or node.get("loading") == "embed":
        return None
    if uri not in self.builder.images:  # remote, data:, or missing (Sphinx has warned)
        return None
    built = run.site
    key = built.key_of(Path(self.builder.srcdir, uri))
    if key is None or key not in built.images:
        if key is not None and any(r.srcset and r.matches(key) for r in run.config.rules):
            log.warning(
                "imgpipe: '%s' has no renditions (its build failed, see above); "
                "the original is shown",
                uri,
                location=node,
                type="imgpipe",
                subtype="image",
            )
        return None
    entry = built.images.entry(key)
    attrs = _size_attributes(node, entry["width"], entry["height"])
    classes = list(node.get("classes", []))
    if "align" in node:
        classes.append(f"align-{node['align']}")
    if classes:
        attrs["class"] = " ".join(classes)
    ids = list(node.get("ids", []))
    if ids:
        attrs["id"] = ids[0]
    # As the other plugins do (site.picture_rewriter): a page's first picture is likely in
    # the first viewport, where lazy loading delays the largest paint. A translator writes
    # one page; an author's `:loading: lazy` still wins.
    if not getattr(self, "_imgpipe_seen", False) and node.get("loading") != "lazy":
        attrs["loading"] = False
    self._imgpipe_seen = True
    # Without :alt:, docutils writes the image's URL as its alt text; so do we.
    sphinx_uri = posixpath.join(self.builder.imgpath, urllib.parse.quote(self.builder.images[uri]))
    images = built.images.rebase(f"{self.builder.imgpath}/{OUTPUT_DIR}/")
    markup = str(images.picture(key, alt=node.get("alt", sphinx_uri), **attrs))
    anchors = "".join(f'<span id="{i}"></span>' for i in ids[1:])
    return anchors + markup + ("" if _inline(node) else "\n")


def _inline(node: nodes.image) -> bool:
    """As docutils decides whether an image is inline (no newline after it)."""
    parent = node.parent
    if isinstance(parent, nodes.reference):
        return isinstance(parent.parent, nodes.TextElement)
    return isinstance(parent, nodes.TextElement)


def _size_attributes(node: nodes.image, width: int, height: int) -> dict[str, Any]:
    """:width:, :height: and :scale: as `<img>` attributes: pixel values (bare or `px`) as
    width/height (the other side follows in proportion, and a pixel width narrows `sizes`:
    imgpipe.html), others (%, em...) as a style with `auto` for the side not given, so the
    image keeps its shape. Unlike docutils, :scale: with one side given scales the other in
    proportion rather than taking it from the image file, which would distort it."""
    scale = node.get("scale", 100) / 100
    measures = {
        side: nodes.parse_measure(node[side]) for side in ("width", "height") if side in node
    }
    if "scale" in node and not measures:
        measures = {"width": (width, ""), "height": (height, "")}
    attrs: dict[str, Any] = {}
    style: list[str] = []
    for side, (value, unit) in measures.items():
        if unit in ("", "px"):
            attrs[side] = max(1, round(value * scale))
        else:
            style.append(f"{side}: {value * scale:g}{unit};")
    if style:
        style += [f"{side}: auto;" for side in ("width", "height") if side not in measures]
        attrs["style"] = " ".join(style)
    elif "width" in node and "height" in node:
        # imgpipe.html keeps the ratio with `height:auto` (a theme's `max-width: 100%` would
        # squash the image otherwise); an author who gave both sides gets exactly those.
        attrs["style"] = False
    return attrs
