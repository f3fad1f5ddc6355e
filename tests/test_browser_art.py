"""Art direction in a real browser: headless Chromium over a local HTTP server loads the square
variant on a 375 px phone and the wide default on a 1200 px desktop, as the `<source media>`
of the built snippet says, and reserves the box of the crop it picked (width/height on each
`<source>`), so nothing shifts when the image arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")
sync_api = pytest.importorskip("playwright.sync_api")

from browser_support import chromium, require_chromium, serve, url_of  # noqa: E402

from imgpipe import build as b  # noqa: E402
from imgpipe.config import from_dict  # noqa: E402

require_chromium()

RULE = {
    "include": ["*.jpg"],
    "widths": [480, 960, 1600],
    "formats": ["webp", "jpeg"],
    "sizes": "(min-width: 60rem) 60rem, 100vw",
    "art": [{"media": "(max-width: 600px)", "aspect": "1:1", "widths": [360, 720]}],
}
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ margin: 0 }} img {{ display: block; max-width: 100%; height: auto }}</style>
</head><body>{snippet}</body></html>"""

# The box the <img> has before any image byte arrived (the file is held back), and after.
_BOX = "() => { const r = document.querySelector('img').getBoundingClientRect(); return [r.width, r.height]; }"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("art")
    (root / "images").mkdir()
    xyz = pyvips.Image.xyz(2000, 1125)  # 16:9
    photo = (xyz[0] % 256).bandjoin([xyz[1] % 256, (xyz[0] + xyz[1]) % 256]).cast("uchar")
    photo.copy(interpretation="srgb").jpegsave(str(root / "images/hero.jpg"), Q=85)
    raw = {
        "source": "images",
        "output": "public/img",
        "base_url": "/img/",
        "cache_dir": ".cache",
        "jobs": 1,
        "rules": [RULE],
        "images": {"hero.jpg": {"focus": "0.2x0.5", "alt": "A hero"}},
    }
    summary = b.build(from_dict(raw, root))
    assert summary.ok, summary.failures
    snippet = (root / "public/img/_snippets/hero.jpg.default.html").read_text()
    (root / "public/index.html").write_text(PAGE.format(snippet=snippet))
    return url_of(serve(root / "public")), root / "public"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(sync_api) as browser:
        yield browser


def visit(browser, base: str, width: int) -> tuple[list[str], list[float], list[float], dict]:
    """Image URLs fetched, the <img> box before its bytes arrive and after, and the markup."""
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    fetched: list[str] = []
    held: list = []

    def hold(route) -> None:  # images wait until the box was measured
        fetched.append(route.request.url)
        held.append(route)

    page.route("**/*.{jpg,webp,avif}", hold)
    page.goto(base + "index.html", wait_until="domcontentloaded")
    page.wait_for_function("() => document.querySelector('img') !== null")
    page.wait_for_timeout(200)  # let the preload scanner ask for the image
    before = page.evaluate(_BOX)
    for route in held:
        route.continue_()
    page.wait_for_function("() => document.querySelector('img').complete", timeout=30_000)
    after = page.evaluate(_BOX)
    markup = page.evaluate(
        """() => [...document.querySelectorAll('source')].map(s => ({
            media: s.getAttribute('media'), type: s.type,
            width: s.getAttribute('width'), height: s.getAttribute('height')}))"""
    )
    context.close()
    return fetched, before, after, markup


def _fetched_file(root: Path, urls: list[str]) -> Path:
    (url,) = urls
    return root / url.split("/", 3)[3]


def test_a_phone_loads_the_square_variant(site, browser):
    base, root = site
    fetched, before, after, _ = visit(browser, base, 375)
    file = _fetched_file(root, fetched)
    image = pyvips.Image.new_from_file(str(file))
    assert "-art1-" in file.name and file.suffix == ".webp", file.name
    assert image.width == image.height  # square, as the file on disk says
    assert before == after == [375, 375]  # reserved from <source width height>: no shift


def test_a_desktop_loads_the_wide_default(site, browser):
    base, root = site
    fetched, before, after, _ = visit(browser, base, 1200)
    file = _fetched_file(root, fetched)
    image = pyvips.Image.new_from_file(str(file))
    assert "-art" not in file.name and file.suffix == ".webp", file.name
    assert abs(image.width / image.height - 16 / 9) < 0.01
    assert before[0] == after[0] and abs(before[1] - after[1]) < 1  # no shift
    assert abs(after[0] / after[1] - 16 / 9) < 0.01


def test_every_source_has_width_and_height(site, browser):
    base, root = site
    _, _, _, markup = visit(browser, base, 1200)
    manifest = json.loads((root / "img/imgpipe-manifest.json").read_text())
    group = manifest["sources"]["hero.jpg"]["srcsets"]["default"]
    assert markup == [
        {"media": "(max-width: 600px)", "type": "image/webp", "width": "720", "height": "720"},
        {"media": "(max-width: 600px)", "type": "image/jpeg", "width": "720", "height": "720"},
        {
            "media": None,
            "type": "image/webp",
            "width": str(group["width"]),
            "height": str(group["height"]),
        },
    ]
