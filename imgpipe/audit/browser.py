"""The audit's one owner of Playwright: headless Chromium opens a page, loads its images and
measures them, at a few fixed viewports and over the sweep (sweep.py).

Per page, two fresh browser contexts load it the way visitors do, a phone (375 x 812, device
pixel ratio 2) and a laptop (1280 x 800, ratio 1): which file Chromium chose there is a fact
only a fresh load gives (a resized page keeps a larger file it already has). The laptop's page
is then resized through the sweep, which reads only layout (rendered boxes, what `sizes`
evaluates to), never which file was chosen. Only the site's own origin is fetched: a theme's
CDN links would stall on a closed network and say nothing about the site's images.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sweep import sweep

CHROMIUM = "/usr/bin/chromium"  # Debian's; IMGPIPE_CHROMIUM overrides, else Playwright's own
# Without the background-networking flags Chromium keeps dialling Google on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
HEIGHT = 800  # the sweep's viewport height: what "the first viewport" means for the fold


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    dpr: int

    def as_dict(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height, "dpr": self.dpr}


PHONE = Viewport(375, 812, 2)
LAPTOP = Viewport(1280, HEIGHT, 1)


@dataclass(frozen=True)
class PageScan:
    """What Chromium saw on one page: per `<img>` (document order) its facts at each fresh
    load, and its measurements at each swept viewport width."""

    loads: dict[Viewport, list[dict[str, Any]]]
    samples: dict[int, list[dict[str, Any]]]


def executable() -> str | None:
    """The Chromium to drive: $IMGPIPE_CHROMIUM, else Debian's, else Playwright's download."""
    path = os.environ.get("IMGPIPE_CHROMIUM") or CHROMIUM
    return path if Path(path).exists() else None


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium for a whole run (starting one costs about a second)."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable(), args=CHROMIUM_ARGS)
        except Error as error:
            raise LaunchError(str(error).splitlines()[0]) from None
        try:
            yield browser
        finally:
            browser.close()


def scan(browser: Any, url: str, origin: str) -> PageScan:
    """Load `url` as a phone and as a laptop, then sweep the laptop's viewport width."""
    loads: dict[Viewport, list[dict[str, Any]]] = {}
    with _page(browser, url, origin, PHONE) as page:
        loads[PHONE] = page.evaluate(_LOAD)
    with _page(browser, url, origin, LAPTOP) as page:
        loads[LAPTOP] = page.evaluate(_LOAD)
        frames: dict[int, list[dict[str, Any]]] = {}

        def measure(width: int) -> list[float]:
            page.set_viewport_size({"width": width, "height": HEIGHT})
            frames[width] = images = page.evaluate(_MEASURE)
            # Bisect where any image's width, or what its `sizes` says, changes course.
            return [x for i in images for x in (i["width"], i["sizes"] or 0.0)]

        samples = {width: frames[width] for width in sweep(measure)}
    return PageScan(loads, samples)


def links(browser: Any, url: str, origin: str) -> tuple[bool, list[str]]:
    """Whether `url` is an HTML page, and the links on it (absolute, without fragments)."""
    with _page(browser, url, origin, LAPTOP, images=False) as page:
        if not page.evaluate("document.contentType === 'text/html'"):
            return False, []
        return True, page.evaluate(_LINKS)


@contextmanager
def _page(
    browser: Any, url: str, origin: str, viewport: Viewport, images: bool = True
) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        device_scale_factor=viewport.dpr,
    )
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)

        def route(route: Any) -> None:
            request = route.request
            if not request.url.startswith(origin) or (
                not images and request.resource_type == "image"
            ):
                route.abort()
            else:
                route.continue_()

        page.route("**/*", route)
        response = page.goto(url, wait_until="load")
        if response is None or response.status >= 400:
            status = response.status if response is not None else "no answer"
            raise PageError(f"{url}: HTTP {status}")
        yield page
    finally:
        context.close()


class PageError(Exception):
    """A page that could not be loaded."""


class LaunchError(Exception):
    """Chromium did not start."""


# Shared by the scripts below: a srcset parser after the HTML spec's (URLs may hold commas,
# data: URLs always do), and the element whose srcset/sizes the browser uses for an <img>.
_COMMON = r"""
const parseSrcset = (text) => {
  const out = []; let pos = 0; text = text || '';
  while (pos < text.length) {
    while (pos < text.length && /[\s,]/.test(text[pos])) pos++;
    if (pos >= text.length) break;
    let start = pos;
    while (pos < text.length && !/\s/.test(text[pos])) pos++;
    let url = text.slice(start, pos), descriptor = '';
    if (url.endsWith(',')) url = url.replace(/,+$/, '');
    else {
      start = pos;
      while (pos < text.length && text[pos] !== ',') pos++;
      descriptor = text.slice(start, pos).trim();
    }
    const w = /^\d+w$/.test(descriptor) ? parseInt(descriptor) : null;
    const x = /^[\d.]+x$/.test(descriptor) ? parseFloat(descriptor) : (w ? null : 1);
    out.push({url: new URL(url, document.baseURI).href, w, x});
  }
  return out;
};
const SUPPORTED = ['', 'image/avif', 'image/webp', 'image/jpeg', 'image/png', 'image/gif',
                   'image/apng', 'image/svg+xml'];
const chosenElement = (img) => {
  const picture = img.parentElement && img.parentElement.tagName === 'PICTURE'
    ? img.parentElement : null;
  if (!picture) return img;
  for (const source of picture.querySelectorAll(':scope > source')) {
    if (parseSrcset(source.getAttribute('srcset')).some(c => c.url === img.currentSrc))
      return source;
  }
  for (const source of picture.querySelectorAll(':scope > source')) {
    const media = source.getAttribute('media');
    const type = (source.getAttribute('type') || '').trim().toLowerCase();
    if ((!media || matchMedia(media).matches) && SUPPORTED.includes(type)) return source;
  }
  return img;
};
const contentBox = (img) => {
  const r = img.getBoundingClientRect(), s = getComputedStyle(img);
  const px = (name) => parseFloat(s[name]) || 0;
  return {
    width: r.width - px('borderLeftWidth') - px('borderRightWidth')
           - px('paddingLeft') - px('paddingRight'),
    height: r.height - px('borderTopWidth') - px('borderBottomWidth')
            - px('paddingTop') - px('paddingBottom'),
    top: r.top + scrollY, shown: r.width > 0 && r.height > 0 && s.visibility !== 'hidden',
    fit: s.objectFit,
  };
};
"""

# At a fresh load: what each <img> is, where it is before anything scrolls, then (scrolled
# into view and decoded, as a visitor scrolling down would) which file it got, the widest file
# it offers, and a thumbnail for the HTML report.
_LOAD = (
    "async () => {"
    + _COMMON
    + r"""
  const images = [...document.images];
  const first = images.map(img => contentBox(img));
  const out = [];
  for (const [i, img] of images.entries()) {
    let error = null;
    if (contentBox(img).shown) {
      img.scrollIntoView({block: 'center'});
      // A lazy image that never comes into view would keep decode() pending for ever.
      const late = new Promise((_, no) => setTimeout(() => no('not loaded in 20 s'), 20000));
      try { await Promise.race([img.decode(), late]); } catch (e) { error = String(e); }
    }
    const element = chosenElement(img);
    const candidates = parseSrcset(element.getAttribute('srcset'));
    const current = candidates.find(c => c.url === img.currentSrc);
    // naturalWidth is density-corrected: the file's own width is the `w` descriptor, or
    // naturalWidth times the density of an `x` candidate (1 for a plain src).
    const fileWidth = current && current.w ? current.w
                    : Math.round(img.naturalWidth * (current ? current.x : 1));
    // The widest file on offer: `w` descriptors say it; other files are read.
    let widest = fileWidth;
    const options = candidates.length ? candidates
                  : [{url: img.currentSrc || img.src, w: null, x: 1}];
    for (const c of options) {
      if (c.w) { widest = Math.max(widest, c.w); continue; }
      if (!c.url || c.url === img.currentSrc) continue;
      const probe = new Image();
      probe.src = c.url;
      try { await probe.decode(); widest = Math.max(widest, probe.naturalWidth); } catch (e) {}
    }
    let thumbnail = null;
    try {
      const scale = Math.min(1, 160 / (img.naturalWidth || 1), 120 / (img.naturalHeight || 1));
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
      canvas.getContext('2d').drawImage(img, 0, 0, canvas.width, canvas.height);
      thumbnail = canvas.toDataURL('image/jpeg', 0.8);
    } catch (e) {}  // a cross-origin image taints the canvas: no thumbnail
    const box = contentBox(img);
    out.push({
      src: img.getAttribute('src') || '', url: img.currentSrc || img.src, error,
      html: img.outerHTML.slice(0, 300),
      srcset: element.getAttribute('srcset'), sizes: element.getAttribute('sizes'),
      w_candidates: candidates.filter(c => c.w).map(c => c.w),
      in_picture: element !== img || img.parentElement.tagName === 'PICTURE',
      loading: (img.getAttribute('loading') || '').toLowerCase(),
      has_width: img.hasAttribute('width'), has_height: img.hasAttribute('height'),
      file_width: fileWidth, widest, natural_width: img.naturalWidth,
      natural_height: img.naturalHeight, width: box.width, height: box.height,
      shown: box.shown, first_top: first[i].top, first_shown: first[i].shown,
      thumbnail,
    });
  }
  // A file another image of the page shows too: Chromium may pick it from its memory cache,
  // wider than this image's `sizes` asks for, at no extra download.
  for (const o of out) o.shared = out.filter(p => p.url === o.url).length > 1;
  scrollTo(0, 0);
  return out;
}"""
)

# At one swept width: each <img>'s rendered box, and what its `sizes` evaluates to, read from
# Chromium itself: a 1x1 GIF declared `1w` under the same `sizes` lays out exactly that wide
# (its density is 1/sizes), whatever units, calc() or media conditions `sizes` uses.
_MEASURE = (
    "async () => {"
    + _COMMON
    + r"""
  const GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==';
  const images = [...document.images];
  const sizesOf = images.map(img => {
    const element = chosenElement(img);
    const srcset = parseSrcset(element.getAttribute('srcset'));
    if (!srcset.some(c => c.w)) return null;  // only `w` candidates are picked by sizes
    return element.getAttribute('sizes') ?? '';
  });
  const box = document.createElement('div');
  box.style.cssText = 'position:absolute;left:0;top:0;width:0;height:0;overflow:hidden;' +
                      'visibility:hidden;pointer-events:none';
  const probes = new Map();
  for (const sizes of new Set(sizesOf.filter(s => s !== null))) {
    const probe = document.createElement('img');
    probe.style.cssText = 'position:absolute!important;max-width:none!important;' +
      'min-width:0!important;width:auto!important;height:auto!important;' +
      'border:0!important;padding:0!important';
    probe.sizes = sizes;
    probe.srcset = GIF + ' 1w';
    box.appendChild(probe);
    probes.set(sizes, probe);
  }
  document.body.appendChild(box);
  await Promise.all([...probes.values()].map(p => p.decode().catch(() => null)));
  const sizesPx = new Map([...probes].map(([s, p]) => [s, p.getBoundingClientRect().width]));
  box.remove();
  return images.map((img, i) => {
    const b = contentBox(img);
    return {width: b.shown ? b.width : 0, height: b.shown ? b.height : 0, top: b.top,
            shown: b.shown, fit: b.fit, natural_width: img.naturalWidth,
            natural_height: img.naturalHeight,
            sizes: sizesOf[i] === null ? null : sizesPx.get(sizesOf[i])};
  });
}"""
)

_LINKS = r"""() => [...document.querySelectorAll('a[href]')]
  .map(a => { const u = new URL(a.href, document.baseURI); u.hash = ''; return u.href; })"""
