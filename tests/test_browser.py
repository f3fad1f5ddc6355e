"""The built sites in a real browser: headless Chromium (Debian's `chromium`, which .ci/run
installs) driven by Playwright, over a local HTTP server.

Checked on the example site (`imgpipe build` with the repository's imgpipe.toml, then its
make_page.py) and on the MkDocs test site: every image loads (no 4xx/5xx, naturalWidth > 0),
AVIF is what the browser picks wherever a <picture> offers it, a 400 px wide viewport fetches a
smaller rendition than a 1600 px one, and every <img> has width and height.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pyvips")
pytest.importorskip("mkdocs")
sync_api = pytest.importorskip("playwright.sync_api")

from browser_support import chromium, require_chromium, serve, url_of  # noqa: E402
from sites import copy_site  # noqa: E402

require_chromium()


@functools.cache
def _serve(directory: Path) -> str:
    return url_of(serve(directory))


@pytest.fixture(scope="module")
def mkdocs_site(tmp_path_factory) -> Path:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    root = copy_site("mkdocs", tmp_path_factory.mktemp("mkdocs") / "src", "docs/img")
    build(load_config(str(root / "mkdocs.yml")))
    return root / "site"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(sync_api) as browser:
        yield browser


# Scrolls each image into view (they are lazy) and waits for it; returns what the browser chose.
_LOAD_ALL = r"""async () => {
  const out = [];
  for (const img of document.querySelectorAll('img')) {
    img.scrollIntoView();
    let error = null;
    try { await img.decode(); } catch (e) { error = String(e); }
    const picture = img.parentElement.tagName === 'PICTURE' ? img.parentElement : null;
    // naturalWidth is density-corrected for `w` candidates, so the fetched file's width is
    // read from the descriptor of the candidate the browser chose.
    let chosen = 0;
    for (const el of [...(picture ? picture.querySelectorAll('source') : []), img]) {
      for (const candidate of (el.getAttribute('srcset') || '').split(',')) {
        const [url, descriptor] = candidate.trim().split(/\s+/);
        if (url && new URL(url, document.baseURI).href === img.currentSrc && descriptor) {
          chosen = parseInt(descriptor);
        }
      }
    }
    out.push({chosen,
      src: img.getAttribute('src'), currentSrc: img.currentSrc, error,
      naturalWidth: img.naturalWidth,
      width: img.getAttribute('width'), height: img.getAttribute('height'),
      offers: picture ? [...picture.querySelectorAll('source')].map(s => s.type) : [],
    });
  }
  return out;
}"""


def visit(browser, base: str, path: str, width: int) -> tuple[list[dict], list[str]]:
    """Open a page in a fresh context (no image cache shared between viewports)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    bad: list[str] = []
    # Only the local server is reachable: a theme's CDN links must not stall the test.
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(base) else route.abort(),
    )
    page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on(
        "requestfailed", lambda r: bad.append(f"failed {r.url}") if r.url.startswith(base) else None
    )
    page.goto(base + path, wait_until="load")
    images = page.evaluate(_LOAD_ALL)
    context.close()
    return images, bad


# site -> (fixture, pages, (page, a responsive image's src) to compare across viewports)
SITES = {
    "example-site": ("example_site", ["index.html"], ("index.html", "/photos/dune-1600")),
    "mkdocs": ("mkdocs_site", ["", "sub/page/", "sub/deeper/more/"], ("sub/page/", "/photo-")),
}


# Building the example site (every photo, every format) takes ~20 s: its cases are `slow`.
@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.slow) if name == "example-site" else name
        for name in sorted(SITES)
    ]
)
def site(request, browser) -> tuple[str, list[str], tuple[str, str], object]:
    fixture, pages, responsive = SITES[request.param]
    return _serve(request.getfixturevalue(fixture)), pages, responsive, browser


def test_every_image_loads_with_width_and_height(site):
    base, pages, _, browser = site
    for path in pages:
        images, bad = visit(browser, base, path, 1280)
        assert bad == [], path
        assert len(images) >= 2, path
        for image in images:
            assert image["error"] is None and image["naturalWidth"] > 0, (path, image)
            assert image["width"] and image["height"], (path, image)


def test_avif_is_chosen_wherever_it_is_offered(site):
    base, pages, _, browser = site
    offered = []
    for path in pages:
        images, _ = visit(browser, base, path, 1280)
        offered += [i for i in images if "image/avif" in i["offers"]]
    assert offered, "no page offers AVIF at all"
    for image in offered:
        assert image["currentSrc"].endswith(".avif"), image


def test_a_narrow_viewport_fetches_a_smaller_rendition(site):
    base, _, (path, src), browser = site
    narrow, _ = visit(browser, base, path, 400)
    wide, _ = visit(browser, base, path, 1600)
    small = next(i for i in narrow if src in i["src"])
    large = next(i for i in wide if src in i["src"])
    assert 0 < small["chosen"] < large["chosen"], (small, large)


@pytest.mark.slow
def test_the_main_job_leaves_a_report_page_to_open(example_site, browser):
    """README's first command (`imgpipe build`) writes example-site/build-report.html, next
    to the published folder: a thumbnail of every source, each of which loads."""
    sources = json.loads((example_site / "img/imgpipe-manifest.json").read_text())["sources"]
    images, bad = visit(browser, _serve(example_site.parent), "build-report.html", 1280)
    assert bad == [] and len(images) == len(sources) >= 6
    for image in images:
        assert image["error"] is None and image["naturalWidth"] > 0, image
