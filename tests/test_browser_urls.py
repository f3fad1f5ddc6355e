"""Odd file names in a real browser: every srcset candidate of every snippet loads (headless
Chromium over a local HTTP server; the real engine). Issue 18, item 6."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")
sync_api = pytest.importorskip("playwright.sync_api")

from browser_support import chromium, require_chromium, serve, url_of  # noqa: E402
from test_urls import ODD, odd_site  # noqa: E402

from imgpipe import build as b  # noqa: E402

require_chromium()

_LOAD_ALL = """async () => {
  const out = [];
  for (const img of document.querySelectorAll('img')) {
    img.scrollIntoView();
    let error = null;
    try { await img.decode(); } catch (e) { error = String(e); }
    out.push({alt: img.alt, currentSrc: img.currentSrc, error, natural: img.naturalWidth});
  }
  return out;
}"""


def photo(path: Path, i: int) -> None:
    xyz = pyvips.Image.xyz(480, 360)
    image = (xyz[0] * (i + 1) % 256).bandjoin([xyz[1] % 256, (xyz[0] + xyz[1]) % 256])
    image.cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=90)


def test_every_srcset_candidate_with_odd_names_loads(tmp_path):
    config = odd_site(tmp_path, photo)
    assert b.build(config).ok
    site = tmp_path / "site"
    (site / "img").parent.mkdir()
    (tmp_path / "public").rename(site / "img")
    snippets = "\n".join((site / f"img/_snippets/{name}.default.html").read_text() for name in ODD)
    # The <picture> pages exercise the WebP candidates; without the <source> elements, the
    # <img srcset> (JPEG) ones.
    (site / "picture.html").write_text(f"<!doctype html><body>{snippets}</body>")
    (site / "img.html").write_text(
        f"<!doctype html><body>{re.sub(r'<source[^>]*>', '', snippets)}</body>"
    )
    server = serve(site)
    failed: list[str] = []
    try:
        with chromium(sync_api) as browser:
            for page_name, fmt in (("picture.html", "webp"), ("img.html", "jpg")):
                for viewport, width in ((100, 120), (200, 240)):
                    context = browser.new_context(
                        viewport={"width": viewport, "height": 300}, device_scale_factor=1
                    )
                    page = context.new_page()
                    page.on("response", lambda r: r.status >= 400 and failed.append(r.url))
                    page.on("requestfailed", lambda r: failed.append(r.url))
                    page.goto(url_of(server) + page_name)
                    images = page.evaluate(_LOAD_ALL)
                    context.close()
                    assert len(images) == len(ODD)
                    for image in images:
                        assert image["error"] is None and image["natural"] > 0, image
                        name = "jpeg" if fmt == "jpg" else fmt
                        found = re.search(
                            rf"-(\d+)-{name}\.[0-9a-f]{{8}}\.{fmt}$", image["currentSrc"]
                        )
                        # A WebP that saves under 5% at a width is dropped from the srcset
                        # (manifest `dropped`): the browser then takes the next one up.
                        assert found and int(found.group(1)) >= width, image
    finally:
        server.shutdown()
        server.server_close()
    assert failed == []
