"""Headless Chromium and a local HTTP server for the browser tests."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google on this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip the module without Debian's chromium, except in CI, where .ci/run installs it."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; .ci/run should have installed chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".avif": "image/avif",
        ".webp": "image/webp",
        ".webm": "video/webm",
        ".mp4": "video/mp4",
    }

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(directory: Path) -> ThreadingHTTPServer:
    """Serve `directory` on a free loopback port in a daemon thread."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


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
