"""What is wrong with a page's images, judged from what Chromium measured (browser.PageScan).

Pure: no browser here. Each kind is one function over one image's facts; KINDS is the table
the CLI, the README and the reports are written from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .browser import HEIGHT, LAPTOP, PageScan, Viewport
from .sweep import suggest

KINDS = {
    "wrong-sizes": "`sizes` disagrees with the rendered width somewhere in the sweep",
    "oversized": "the file Chromium chose is more than twice as wide as needed",
    "undersized": "no file covers the rendered width at device pixel ratio 2",
    "no-dimensions": "no width and height attributes: the page shifts when it loads",
    "lazy-above-fold": "loading=lazy in the first viewport: it delays the largest paint",
    "unprocessed": "a local raster image imgpipe did not make responsive",
    "distorted": "shown at another aspect ratio than the file's",
}

# `sizes` may be off by this much before it matters: the browser's choice moves in steps of
# whole candidates anyway (the tolerance: 5% + 15 px).
SIZES_SLACK = (0.05, 15.0)
OVERSIZED = 2.0  # chosen file width over the width needed (rendered x DPR)
OVERSIZED_PX = 100  # ... and at least this many pixels too wide: small icons are not worth it
ASPECT_SLACK = (0.02, 1.5)  # 2% and 1.5 px: rounding of width/height attributes
RASTER = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif", ".bmp", ".tif", ".tiff")
# imgpipe's output names: `<stem>-<label>.<8 hex digits of the cache key>.<ext>` (plan.py).
RENDITION_NAME = re.compile(r"-[A-Za-z0-9][A-Za-z0-9_-]*\.[0-9a-f]{8}\.[a-z0-9]+$")


@dataclass(frozen=True)
class Finding:
    page: str
    img: str
    kind: str
    detail: str
    viewport: Viewport | None = None
    sizes: str | None = None
    suggested: str | None = None
    rule: str | None = None  # where the `sizes` came from, when imgpipe wrote it
    thumbnail: str | None = field(default=None, repr=False)  # a data: URL, for the HTML report

    def as_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "img": self.img,
            "kind": self.kind,
            "sizes": self.sizes,
            "suggested": self.suggested,
            "viewport": self.viewport.as_dict() if self.viewport else None,
            "detail": self.detail,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Image:
    """One `<img>` of a page: its facts at each fresh load and its swept measurements."""

    loads: dict[Viewport, dict[str, Any]]
    samples: dict[int, dict[str, Any]]

    @property
    def facts(self) -> dict[str, Any]:
        return self.loads[LAPTOP]


@dataclass(frozen=True)
class Origin:
    """What the site's imgpipe manifests say about an image URL (site.Manifests)."""

    local: bool  # served by the site itself
    made_by_imgpipe: bool
    source_width: int | None = None  # the original's width: nothing wider can be made
    rule: str | None = None  # where its `sizes` is set: "imgpipe.toml:21 (rules[1].sizes)"
    widths_rule: str | None = None  # where its widths are set


def judge(page: str, scan: PageScan, origin_of: Callable[[str], Origin]) -> list[Finding]:
    """Every finding on one page, in document order, each kind once per image."""
    findings: list[Finding] = []
    count = len(scan.loads[LAPTOP])
    for index in range(count):
        image = Image(
            {vp: facts[index] for vp, facts in scan.loads.items()},
            {width: frame[index] for width, frame in scan.samples.items()},
        )
        facts = image.facts
        if facts["url"].startswith("data:"):
            continue  # inline pixels: nothing to fetch, resize or describe
        origin = origin_of(facts["url"])
        img = facts["src"] or facts["url"]
        for check in CHECKS:
            for kind, detail, viewport, extra in check(image, origin):
                findings.append(
                    Finding(
                        page,
                        img,
                        kind,
                        detail,
                        viewport,
                        sizes=facts["sizes"],
                        thumbnail=facts["thumbnail"],
                        **extra,
                    )
                )
    return findings


Result = Iterator[tuple[str, str, Viewport | None, dict[str, Any]]]


def wrong_sizes(image: Image, origin: Origin) -> Result:
    sizes = image.facts["sizes"]
    if (
        sizes is not None
        and sizes.strip().lower().startswith("auto")
        and (image.facts["loading"] == "lazy")
    ):
        return  # `sizes=auto`: the browser uses the rendered width itself
    shown = [(w, s) for w, s in image.samples.items() if s["shown"] and s["sizes"] is not None]
    worst = None
    for viewport, sample in shown:
        excess = abs(sample["sizes"] - sample["width"]) - (
            SIZES_SLACK[0] * sample["width"] + SIZES_SLACK[1]
        )
        if excess > 0 and (worst is None or excess > worst[0]):
            worst = (excess, viewport, sample)
    if worst is None:
        return
    _excess, viewport, sample = worst
    suggested = suggest([(w, s["width"]) for w, s in shown])
    yield (
        "wrong-sizes",
        f"sizes gives {sample['sizes']:.0f}px, shown {sample['width']:.0f}px wide "
        f"at a {viewport}px viewport",
        Viewport(viewport, HEIGHT, 1),
        {"suggested": suggested, "rule": origin.rule},
    )


def oversized(image: Image, origin: Origin) -> Result:
    for viewport, facts in image.loads.items():
        needed = facts["width"] * viewport.dpr
        if not facts["shown"] or needed <= 0 or facts["error"] or facts.get("shared"):
            continue  # a file another image shows costs nothing more (the memory cache)
        chosen = facts["file_width"]
        if chosen > OVERSIZED * needed and chosen - needed >= OVERSIZED_PX:
            yield (
                "oversized",
                f"a {chosen}px wide file for {needed:.0f} device px "
                f"({facts['width']:.0f}px at DPR {viewport.dpr})",
                viewport,
                {"rule": origin.rule},
            )
            return


def undersized(image: Image, origin: Origin) -> Result:
    facts = image.facts
    if _is_vector(facts["url"]) or facts["error"]:
        return
    widest = max(f["widest"] for f in image.loads.values())
    if not widest:
        return  # never loaded (hidden at both loads): its files are unknown
    if origin.source_width is not None and widest >= origin.source_width:
        return  # already the original's full width: nothing wider can be made
    shown = [(w, s) for w, s in image.samples.items() if s["shown"]]
    if not shown:
        return
    viewport, sample = max(shown, key=lambda item: item[1]["width"])
    needed = 2 * sample["width"]
    if widest < needed - 2:  # 2 px: rounding of fractional layout widths
        yield (
            "undersized",
            f"the widest file is {widest}px; {needed:.0f}px are needed at DPR 2 "
            f"({sample['width']:.0f}px shown at a {viewport}px viewport)",
            Viewport(viewport, HEIGHT, 2),
            {"rule": origin.widths_rule},
        )


def no_dimensions(image: Image, origin: Origin) -> Result:
    facts = image.facts
    missing = [name for name in ("width", "height") if not facts[f"has_{name}"]]
    if missing:
        yield (
            "no-dimensions",
            f"no {' and no '.join(missing)} attribute: space is made only once it loads",
            None,
            {},
        )


def lazy_above_fold(image: Image, origin: Origin) -> Result:
    if image.facts["loading"] != "lazy":
        return
    at_load = [(vp, f["first_top"]) for vp, f in image.loads.items() if f["first_shown"]]
    swept = [(Viewport(w, HEIGHT, 1), s["top"]) for w, s in image.samples.items() if s["shown"]]
    for viewport, top in [*at_load, *swept]:
        if top < viewport.height:
            yield (
                "lazy-above-fold",
                f"loading=lazy, yet its top is {top:.0f}px down a {viewport.height}px high "
                "viewport: make it eager",
                viewport,
                {},
            )
            return


def unprocessed(image: Image, origin: Origin) -> Result:
    facts = image.facts
    url = urlsplit(facts["url"])
    if not origin.local or not url.path.lower().endswith(RASTER) or origin.made_by_imgpipe:
        return
    if RENDITION_NAME.search(url.path) or facts["srcset"] or facts["in_picture"]:
        return
    yield (
        "unprocessed",
        f"a plain {facts['natural_width']}x{facts['natural_height']} file: let imgpipe make "
        "it responsive (a rule whose include matches it)",
        None,
        {},
    )


def distorted(image: Image, origin: Origin) -> Result:
    for viewport, sample in image.samples.items():
        nw, nh = sample["natural_width"], sample["natural_height"]
        if not sample["shown"] or not nw or not nh or sample["fit"] != "fill":
            continue
        expected = sample["width"] * nh / nw
        off = abs(sample["height"] - expected)
        if off > max(ASPECT_SLACK[0] * expected, ASPECT_SLACK[1]):
            yield (
                "distorted",
                f"shown {sample['width']:.0f}x{sample['height']:.0f}, the file is {nw}x{nh}: "
                "set `height: auto` (or object-fit) in CSS",
                Viewport(viewport, HEIGHT, 1),
                {},
            )
            return


def _is_vector(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".svg")


CHECKS = (
    wrong_sizes,
    oversized,
    undersized,
    no_dimensions,
    lazy_above_fold,
    unprocessed,
    distorted,
)
