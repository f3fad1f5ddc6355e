"""HTML for srcset groups, rendered from manifest data alone (the only jinja2 importer).

Templates live in imgpipe/templates; a site's own `templates` directory is searched first, so
a file named `picture.html`, `img.html` or `video.html` there replaces ours. A group with a
`video` entry (an animation whose rule asks for webm/h264) renders as `video.html`.

Every `<img>` and `<video>` gets `style="height:auto"` (KEEP_RATIO, below).
`placeholder=True` among the attributes puts the source's placeholder (dominant colour and
tiny preview) behind the image as an inline style while it loads. A source with an alpha
channel gets none: the style stays once the image has loaded, and would show through its
transparent pixels as a blurred square. `placeholder="thumbhash"` or "blurhash" sets the colour
and hands the hash to the page's script (`data-thumbhash`, `data-blurhash`).

`Images` is the template API: `picture(src, alt=..., group=..., sizes=..., **attrs)` and
`img(...)` over one manifest, and `install(env, manifest)` to offer both to any Jinja2
environment (a theme's, MkDocs', Pelican's) as globals and filters.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from . import manifest as mf
from .alt import alt_text
from .errors import ImgpipeError, Problem, closest
from .formats import by_name
from .plan import fit_name

TEMPLATE = "picture.html"
IMG_TEMPLATE = "img.html"
VIDEO_TEMPLATE = "video.html"
REPORT_TEMPLATE = "report.html"
DEFAULT_GROUP = "default"
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
# The width and height attributes let a browser reserve an image's box before it loads (no
# layout shift), but they also set its CSS height: on a theme that only sets `max-width: 100%`
# (MkDocs' and Pelican's default themes) the width shrinks to the column and the height stays,
# so a 1600x900 photo shows as 831x900. With `height: auto` the height follows the width, and
# the attributes' ratio still reserves the box while the image loads: the usual
# `img { max-width: 100%; height: auto }` (Material's CSS, every CSS reset). It is inline
# because snippets, template calls and plugin output land in themes imgpipe cannot add a
# stylesheet to; it comes first, so the author's own `style` wins where both set something
# (`style=False` leaves it out, for a theme whose CSS sets the height itself).
KEEP_RATIO = "height:auto"


class Renderer:
    def __init__(self, templates: Path | None = None):
        search = [str(templates)] if templates else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*search, str(BUILTIN_TEMPLATES)]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a typo in a user template fails loudly
            keep_trailing_newline=False,
        )
        self.env.globals["mime"] = lambda fmt: by_name(fmt).mime

    def fingerprint(self) -> str:
        """The template sources and the style added to them, so snippets are re-rendered
        when either changes."""
        return "\0".join(
            [
                *(
                    self.env.loader.get_source(self.env, name)[0]
                    for name in (TEMPLATE, IMG_TEMPLATE, VIDEO_TEMPLATE)
                ),
                KEEP_RATIO,
            ]
        )

    def picture(
        self,
        source: Mapping[str, Any],
        group: str = "default",
        alt: str = "",
        sizes: str | None = None,
        **attrs: Any,
    ) -> str:
        """`<picture>` (or a lone `<img>`, or `<video>`) for one srcset group of a manifest
        source entry."""
        entry = _group(source, group)
        attrs = _styled(attrs, source)
        template = self.env.get_template(VIDEO_TEMPLATE if entry.get("video") else TEMPLATE)
        return (
            template.render(
                group=entry, source=source, alt=alt, sizes=sizes or entry["sizes"], attrs=attrs
            )
            + "\n"
        )

    def img(
        self,
        source: Mapping[str, Any],
        group: str = "default",
        alt: str = "",
        sizes: str | None = None,
        **attrs: Any,
    ) -> str:
        """A lone `<img srcset>` of a group's fallback format (no `<picture>`)."""
        entry = _group(source, group)
        attrs = _styled(attrs, source)
        srcset = ", ".join(f"{i['url']} {i['width']}w" for i in entry["formats"][entry["fallback"]])
        return self.env.get_template(IMG_TEMPLATE).render(
            src=entry["src"],
            srcset=srcset,
            sizes=sizes or entry["sizes"],
            width=entry["width"],
            height=entry["height"],
            alt=alt,
            attrs=attrs,
            source=source,
            group=entry,
        )

    def report(self, **context: Any) -> str:
        """The build report page (report.page gathers what it shows)."""
        return self.env.get_template(REPORT_TEMPLATE).render(**context)


def snippet_path(relpath: str, group: str) -> str:
    """`blog/cat.jpg` + `default` → `blog/cat.jpg.default.html`. The source's extension stays
    in the name so `cat.jpg` and `cat.png` side by side never share a snippet. A name too long
    for the file system is shortened like an output name (plan.fit_name)."""
    directory, slash, name = relpath.rpartition("/")
    tail = f".{group}.html"
    return f"{directory}{slash}{fit_name(name, tail)}{tail}"


def _group(source: Mapping[str, Any], group: str) -> Mapping[str, Any]:
    srcsets = source.get("srcsets", {})
    if group not in srcsets:
        known = ", ".join(sorted(srcsets)) or "none"
        raise KeyError(f"no srcset group {group!r} (groups: {known})")
    return srcsets[group]


class UnknownImage(ImgpipeError):
    """The template API was asked for a source (or group) the manifest does not have."""


# A fixed base URL, or one computed from the Jinja2 context of the page being rendered (a page
# in a subdirectory needs `../img/` where the home page needs `img/`).
BaseUrl = str | Callable[[Mapping[str, Any]], str]


class Images:
    """The template API over one manifest: `picture()` and `img()` by source path.

    `base_url` replaces the manifest's own base URL in every URL written, so one manifest can
    serve pages at different depths (relative URLs) or a site moved under a prefix.
    """

    def __init__(
        self,
        manifest: Mapping[str, Any] | Path | str,
        *,
        templates: Path | None = None,
        base_url: str | None = None,
        renderer: Renderer | None = None,
    ):
        if isinstance(manifest, (str, Path)):
            self.origin = str(manifest)
            manifest = mf.load(Path(manifest))
        else:
            self.origin = "the manifest"
        self.data = manifest
        self.sources: Mapping[str, Any] = manifest.get("sources", {})
        self.renderer = renderer or Renderer(templates)
        self.base_url = base_url

    def rebase(self, base_url: str | None) -> Images:
        """The same images with URLs under another base (cheap: shares the manifest)."""
        other = copy.copy(self)
        other.base_url = base_url
        return other

    @staticmethod
    def key(src: str) -> str:
        """`./blog/cat.jpg`, `/blog/cat.jpg` and `blog//cat.jpg` all name `blog/cat.jpg`."""
        return posixpath.normpath(src.strip().lstrip("/")).removeprefix("./")

    def __contains__(self, src: object) -> bool:
        return isinstance(src, str) and self.key(src) in self.sources

    def entry(self, src: str) -> Mapping[str, Any]:
        """A source's manifest entry (URLs as in the manifest). Raises UnknownImage."""
        key = self.key(src)
        if key in self.sources:
            return self.sources[key]
        guess = closest(key, self.sources) or _closest_by_name(key, self.sources)
        hint = (
            f"; did you mean {guess!r}?"
            if guess
            else ("" if self.sources else "; it has no sources (did the build run?)")
        )
        raise UnknownImage(
            Problem("unknown-image", f"{src!r} is not a source in {self.origin}{hint}", src)
        )

    def picture(
        self,
        src: str,
        alt: str | None = None,
        group: str | None = None,
        sizes: str | None = None,
        **attrs: Any,
    ) -> Markup:
        """`<picture>` with a `<source>` per modern format and an `<img>` fallback."""
        return self._render(self.renderer.picture, src, alt, group, sizes, attrs)

    def img(
        self,
        src: str,
        alt: str | None = None,
        group: str | None = None,
        sizes: str | None = None,
        **attrs: Any,
    ) -> Markup:
        """A lone `<img srcset sizes>` in the group's fallback format."""
        return self._render(self.renderer.img, src, alt, group, sizes, attrs)

    def _render(
        self,
        template,
        src: str,
        alt: str | None,
        group: str | None,
        sizes: str | None,
        attrs: dict[str, Any],
    ) -> Markup:
        source, name = self._source(src, group)
        alt = alt_text(source, self.key(src)) if alt is None else alt
        attrs = _proportional(attrs, source["srcsets"][name])
        sizes = sizes or _fixed_width_sizes(attrs)
        return Markup(template(source, name, alt, sizes, **attrs).rstrip("\n"))

    def install(self, env: jinja2.Environment, base_url: BaseUrl | None = None) -> None:
        """Offer `picture` and `img` to `env` as globals and filters, and `images` (this
        object) as a global. A callable `base_url` is asked for each page's context."""
        picture, img = self.picture, self.img
        if callable(base_url):
            base = base_url

            @jinja2.pass_context
            def picture(ctx, src: str, *args: Any, **kw: Any) -> Markup:  # noqa: F811
                return self.rebase(base(ctx)).picture(src, *args, **kw)

            @jinja2.pass_context
            def img(ctx, src: str, *args: Any, **kw: Any) -> Markup:  # noqa: F811
                return self.rebase(base(ctx)).img(src, *args, **kw)
        elif base_url is not None:
            rebased = self.rebase(base_url)
            picture, img = rebased.picture, rebased.img
        env.globals.update(picture=picture, img=img, images=self)
        env.filters.update(picture=picture, img=img)

    def _source(self, src: str, group: str | None) -> tuple[Mapping[str, Any], str]:
        source = self.entry(src)
        srcsets = source.get("srcsets", {})
        if group is None:  # "default" if there is one, else the only group
            group = (
                DEFAULT_GROUP
                if DEFAULT_GROUP in srcsets or len(srcsets) != 1
                else next(iter(srcsets))
            )
        if group not in srcsets:
            known = ", ".join(sorted(srcsets))
            hint = (
                f"its groups: {known}"
                if known
                else "it has none: give a rule that matches it `widths` (a responsive family)"
            )
            raise UnknownImage(
                Problem("unknown-group", f"{src!r} has no srcset group {group!r}; {hint}", src)
            )
        old = self.data.get("base_url", "/")
        if self.base_url is None or self.base_url == old:
            return source, group
        return _rebased(source, old, self.base_url), group


def install(
    env: jinja2.Environment,
    manifest: Mapping[str, Any] | Path | str,
    *,
    templates: Path | None = None,
    base_url: BaseUrl | None = None,
) -> Images:
    """One call for any Jinja2 environment: `{{ picture("blog/cat.jpg", alt="A cat") }}`,
    `{{ "blog/cat.jpg" | img(alt="A cat", class="wide") }}`."""
    images = Images(manifest, templates=templates)
    images.install(env, base_url)
    return images


def install_originals(env: jinja2.Environment, base_url: Callable[[Any], str]) -> None:
    """`picture` and `img` that show a source's own file (under `base_url(context)`) as a
    plain `<img>`: what a theme gets while there is no build to offer (the plugin is off,
    or its setting is wrong, which was said), so the site still builds, with the originals."""

    @jinja2.pass_context
    def original(ctx, src: str, alt: str | None = None, group=None, sizes=None, **attrs) -> Markup:
        attrs = {"src": base_url(ctx) + mf.url_path(src), "alt": alt or "", **attrs}
        return Markup("<img{}>").format(
            Markup("").join(
                Markup(" {}").format(k) if v is True else Markup(' {}="{}"').format(k, v)
                for k, v in attrs.items()
                if v is not None and v is not False
            )
        )

    env.globals.update(picture=original, img=original)
    env.filters.update(picture=original, img=original)


def _rebased(source: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    def move(url: str) -> str:
        return new + url[len(old) :] if url.startswith(old) else url

    out = copy.deepcopy(dict(source))
    for group in out.get("srcsets", {}).values():
        for variant in (group, *group.get("art", ())):  # art direction variants too
            variant["src"] = move(variant["src"])
            for items in variant["formats"].values():
                for item in items:
                    item["url"] = move(item["url"])
        video = group.get("video")
        if video:
            video["poster"] = video["poster"] and move(video["poster"])
            for item in video["sources"]:
                item["url"] = move(item["url"])
    for rendition in out.get("renditions", {}).values():
        rendition["url"] = move(rendition["url"])
    return out


# placeholder= values: what goes on the image while it loads.
PLACEHOLDERS = (True, "lqip", "thumbhash", "blurhash", "color")


def _styled(attrs: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """The `style` attribute: KEEP_RATIO; then what `placeholder=` asks to show while the image
    loads: True (or "lqip") the source's colour and blurred preview, "thumbhash" / "blurhash"
    the colour and the hash in a `data-thumbhash` / `data-blurhash` attribute for the page's
    script to draw, "color" the colour alone (nothing for a source with alpha); then the
    author's own style (last, so it wins where both set something). An author's `style=False`
    (or None) drops KEEP_RATIO."""
    attrs = dict(attrs)
    wanted = attrs.pop("placeholder", None)
    own = attrs.get("style")
    parts = [] if "style" in attrs and own in (None, False) else [KEEP_RATIO]
    found = source.get("placeholder")
    if wanted in PLACEHOLDERS and found and not source.get("alpha"):
        background = f"background:{found['color']}"
        if wanted in (True, "lqip"):
            background += f" url({found['lqip']}) center/cover no-repeat"
        elif wanted != "color" and found.get(wanted):
            attrs[f"data-{wanted}"] = found[wanted]
        parts.append(background)
    if isinstance(own, str) and own.strip():
        parts.append(own)
    attrs["style"] = ";".join(parts) or None
    return attrs


def _proportional(attrs: dict[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    """An author who sets only width (or height) gets the other side in proportion, so the
    box the browser reserves keeps the image's shape."""
    width, height = attrs.get("width"), attrs.get("height")
    try:
        if width is not None and height is None:
            return {**attrs, "height": round(float(width) * group["height"] / group["width"])}
        if height is not None and width is None:
            return {**attrs, "width": round(float(height) * group["width"] / group["height"])}
    except (TypeError, ValueError):  # "50%" and the like: the author knows best
        pass
    return attrs


def _fixed_width_sizes(attrs: Mapping[str, Any]) -> str | None:
    """An image the author sized in pixels is never shown wider (less on a narrow screen, with
    the usual `max-width: 100%`), so the browser need not fetch for the whole viewport."""
    try:
        width = int(str(attrs.get("width")))
    except ValueError:
        return None
    return f"(max-width: {width}px) 100vw, {width}px" if width > 0 else None


def _closest_by_name(key: str, sources: Mapping[str, Any]) -> str | None:
    """A moved file keeps its name: `cat.jpg` finds `blog/2024/cat.jpg`."""
    by_name: dict[str, str] = {}
    for rel in sorted(sources):
        by_name.setdefault(posixpath.basename(rel), rel)
    name = closest(posixpath.basename(key), by_name)
    return by_name[name] if name else None
