"""Snippets of animated sources in headless Chromium (Debian's `chromium`, driven by Playwright,
over a local HTTP server), as test_browser.py does for stills.

A family with webm/h264 renders as <video autoplay muted loop playsinline>: the browser picks
a source, and the video plays by itself (paused == false, time advancing). Debian's Chromium is
built without the proprietary codecs, so it has no H.264: there the WebM must be the one
chosen, and the MP4 is checked only where the browser says it can play it. A family of
animated WebP and GIF renders as <picture>, and the WebP the browser takes is animated.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pyvips")
pytest.importorskip("av")
sync_api = pytest.importorskip("playwright.sync_api")

from animation_support import coloured_frames, gif, photo_frames  # noqa: E402
from browser_support import chromium, require_chromium, serve, url_of  # noqa: E402

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402

require_chromium()

SITE = """
source = "images"
output = "public/img"
base_url = "img/"
cache_dir = ".cache"
jobs = 2

[[rules]]
include = ["pan.gif"]
widths = [160]
formats = ["webm", "h264"]

[[rules]]
include = ["spin.gif"]
widths = [64]
formats = ["webp", "auto"]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("animated")
    (root / "images").mkdir()
    (root / "images/pan.gif").write_bytes(gif(photo_frames(12, 160, 120), delays=[80] * 12))
    (root / "images/spin.gif").write_bytes(gif(coloured_frames(64, 48, 4)))
    (root / "imgpipe.toml").write_text(SITE)
    assert build(load(root / "imgpipe.toml")).ok
    public = root / "public"
    snippets = public / "img/_snippets"
    video = (snippets / "pan.gif.default.html").read_text()
    picture = (snippets / "spin.gif.default.html").read_text()
    mp4_only = "\n".join(line for line in video.splitlines() if ".webm" not in line)
    (public / "index.html").write_text(f"<!doctype html><body>{video}\n{picture}</body>")
    (public / "mp4.html").write_text(f"<!doctype html><body>{mp4_only}</body>")
    server = serve(public)
    yield url_of(server)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as browser:
        yield browser


# Waits until the video plays (or 10 s pass), then reports what the browser did with it.
_PLAYBACK = r"""async () => {
  const v = document.querySelector('video');
  const started = performance.now();
  while (performance.now() - started < 10000 && (v.paused || v.currentTime === 0)) {
    if (v.error) break;
    await new Promise(r => setTimeout(r, 50));
  }
  const mp4 = v.canPlayType('video/mp4; codecs="avc1.64001f"');
  return {currentSrc: v.currentSrc, paused: v.paused, currentTime: v.currentTime,
          error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight,
          poster: v.poster, loop: v.loop, muted: v.muted, mp4};
}"""

# The <img> of the <picture>, and how many frames the file it chose holds.
_PICTURE = r"""async () => {
  const img = document.querySelector('picture img');
  await img.decode();
  let frames = null;
  if (typeof ImageDecoder !== 'undefined') {
    const blob = await (await fetch(img.currentSrc)).blob();
    const decoder = new ImageDecoder({data: blob.stream(), type: blob.type});
    await decoder.tracks.ready;
    frames = decoder.tracks.selectedTrack.frameCount;
  }
  return {currentSrc: img.currentSrc, naturalWidth: img.naturalWidth, frames};
}"""


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    bad: list[str] = []
    page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    return context, page, bad


def test_the_video_snippet_autoplays_muted_and_loops(site, browser):
    context, page, bad = open_page(browser, site + "index.html")
    state = page.evaluate(_PLAYBACK)
    context.close()
    assert bad == [] and state["error"] is None, state
    assert state["paused"] is False and state["currentTime"] > 0, state
    assert (state["width"], state["height"]) == (160, 120)
    assert state["loop"] and state["muted"] and state["poster"].endswith(".jpg")
    # WebM comes first: every Chromium plays VP9, so that is the one chosen.
    assert state["currentSrc"].endswith(".webm"), state


def test_the_mp4_plays_where_the_browser_has_h264(site, browser):
    context, page, bad = open_page(browser, site + "mp4.html")
    state = page.evaluate(_PLAYBACK)
    context.close()
    if not state["mp4"]:
        pytest.skip(
            "this Chromium has no H.264 (Debian builds lack proprietary codecs); "
            "the WebM source covers it"
        )
    assert bad == [] and state["error"] is None and state["currentSrc"].endswith(".mp4")
    assert state["paused"] is False and state["currentTime"] > 0, state


def test_the_picture_of_an_animation_shows_the_animated_webp(site, browser):
    context, page, bad = open_page(browser, site + "index.html")
    state = page.evaluate(_PICTURE)
    context.close()
    assert bad == [] and state["naturalWidth"] > 0, state
    assert state["currentSrc"].endswith(".webp"), state
    if state["frames"] is not None:
        assert state["frames"] == 4, state
