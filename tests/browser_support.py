"""Headless Chromium and a local HTTP server for the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

# One launch configuration and one static server for the tests and `imgpipe audit`.
from imgpipe.audit.browser import CHROMIUM, CHROMIUM_ARGS
from imgpipe.audit.site import serve_directory as serve  # noqa: F401 - for the tests


def require_chromium() -> None:
    """Skip the module without Debian's chromium, except in CI, where .ci/run installs it."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; .ci/run should have installed chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


@contextmanager
def chromium(sync_api) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
      naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
      // the box it is drawn in, to compare shapes
      shown: [img.getBoundingClientRect().width, img.getBoundingClientRect().height],
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
