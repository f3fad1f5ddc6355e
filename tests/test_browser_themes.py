"""Plugin output on real themes, measured in headless Chromium (issue 12).

A real MkDocs site on its default theme (`mkdocs`), a real Pelican site on its default theme
(`notmyidea`) and, when it is installed, the MkDocs site on Material. Both default themes only
set `max-width: 100%` on images, so the height attribute used to win over the shrunken width:
a 1280x800 photo showed as 831x800. Every image and video must now show at its natural aspect
ratio (content box, within 2%) at a desktop and a phone width, and the camera page's `.JPG`
and GIFs must have been processed (responsive markup, renditions; the animation still moving).
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pyvips")
pytest.importorskip("mkdocs")
pytest.importorskip("pelican")
sync_api = pytest.importorskip("playwright.sync_api")

from animation_support import read_back  # noqa: E402
from browser_support import chromium, require_chromium, serve, url_of  # noqa: E402
from sites import add_camera_page, copy_site  # noqa: E402

require_chromium()

MATERIAL = importlib.util.find_spec("material") is not None
# Widths past the content column of both default themes (about 750-850 px on a 1280 px
# screen), so that a rendition's width attribute is wider than the column.
MKDOCS_OPTIONS = {"widths": [400, 1280], "formats": ["avif", "webp", "auto"], "sizes": "100vw"}
PELICAN_OPTIONS = {"widths": [400, 1280], "formats": ["webp", "auto"]}
VIEWPORTS = (1280, 400)


@pytest.fixture(scope="module")
def mkdocs_root(tmp_path_factory) -> Path:
    root = copy_site("mkdocs", tmp_path_factory.mktemp("mkdocs") / "src", "docs/img")
    add_camera_page(root / "docs/camera.md", root / "docs/img", "img/")
    return root


def _mkdocs(root: Path, theme: str) -> Path:
    """The site built on `theme` (the second theme's build copies renditions from the cache)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site_dir = root.parent / f"site-{theme}"
    config = load_config(
        str(root / "mkdocs.yml"),
        plugins={"imgpipe": {**MKDOCS_OPTIONS, "jobs": 2}},
        theme={"name": theme, "custom_dir": "overrides"},
        site_dir=str(site_dir),
    )
    build(config)
    assert config.plugins["imgpipe"].site.summary.failed == 0
    return site_dir


@pytest.fixture(scope="module")
def mkdocs_site(mkdocs_root) -> Path:
    return _mkdocs(mkdocs_root, "mkdocs")


@pytest.fixture(scope="module")
def material_site(mkdocs_root) -> Path:
    if not MATERIAL:
        pytest.skip("mkdocs-material is not installed")
    return _mkdocs(mkdocs_root, "material")


@pytest.fixture(scope="module")
def pelican_site(tmp_path_factory) -> Path:
    from pelican import Pelican
    from pelican.settings import read_settings

    root = copy_site("pelican", tmp_path_factory.mktemp("pelican") / "blog", "content/images")
    shutil.copy(root / "content/images/photo.jpg", root / "content/articles/nested/attached.jpg")
    add_camera_page(
        root / "content/articles/camera.md",
        root / "content/images",
        "{static}/images/",
        header="Title: Camera\nDate: 2024-01-05\nSlug: camera\n\n",
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(root)  # THEME_TEMPLATES_OVERRIDES is relative to it
        settings = read_settings(
            str(root / "pelicanconf.py"),
            override={"IMGPIPE": {**PELICAN_OPTIONS, "jobs": 2}},
        )
        Pelican(settings).run()
    return root / "output"


# site -> (pages, the page with the camera images, where their renditions are)
SITES = {
    "mkdocs": (["", "sub/page/", "camera/"], "camera/", "imgpipe/img/"),
    "pelican": (
        ["first.html", "nested/second.html", "camera.html"],
        "camera.html",
        "imgpipe/images/",
    ),
    "material": (["", "sub/page/", "camera/"], "camera/", "imgpipe/img/"),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(sync_api) as browser:
        yield browser


@functools.cache
def _serve(directory: Path) -> str:
    return url_of(serve(directory))


@pytest.fixture(params=sorted(SITES))
def site(request) -> tuple[str, Path, str]:
    """(name, output directory, its URL) of each site, built once per module."""
    output = request.getfixturevalue(f"{request.param}_site")
    return request.param, output, _serve(output)


# Each image and video scrolled into view and loaded; its content box and natural size.
_MEASURE = r"""async () => {
  const out = [];
  for (const el of document.querySelectorAll('img, video')) {
    el.scrollIntoView();
    let error = null;
    try {
      if (el.tagName === 'IMG') { await el.decode(); }
      else if (el.readyState < 1) {
        await new Promise((ok, bad) => { el.onloadedmetadata = ok; el.onerror = bad; });
      }
    } catch (e) { error = String(e); }
    const box = el.getBoundingClientRect();
    const css = getComputedStyle(el);
    const px = (name) => parseFloat(css.getPropertyValue(name)) || 0;
    const picture = el.parentElement.tagName === 'PICTURE' ? el.parentElement : null;
    out.push({
      tag: el.tagName, alt: el.getAttribute('alt'), error, currentSrc: el.currentSrc,
      width: box.width - px('padding-left') - px('padding-right')
             - px('border-left-width') - px('border-right-width'),
      height: box.height - px('padding-top') - px('padding-bottom')
              - px('border-top-width') - px('border-bottom-width'),
      naturalWidth: el.naturalWidth ?? el.videoWidth,
      naturalHeight: el.naturalHeight ?? el.videoHeight,
      sources: picture ? [...picture.querySelectorAll('source')].map(s => s.type) : null,
    });
  }
  return out;
}"""


def measure(browser, base: str, path: str, width: int) -> list[dict]:
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    # Only the local server is reachable: a theme's font CDN must not stall the test.
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(base) else route.abort(),
    )
    page.goto(base + path, wait_until="load")
    found = page.evaluate(_MEASURE)
    context.close()
    return found


def test_every_image_shows_at_its_natural_aspect_ratio(site, browser):
    name, _, base = site
    pages, _, _ = SITES[name]
    for path in pages:
        for width in VIEWPORTS:
            found = measure(browser, base, path, width)
            # Remote images are not fetched here (see `measure`).
            shown = [
                i for i in found if i["width"] > 0 and i["currentSrc"].startswith((base, "data:"))
            ]
            assert len(shown) >= 2, (name, path, found)
            for image in shown:
                assert image["error"] is None and image["naturalWidth"] > 0, (path, image)
                natural = image["naturalWidth"] / image["naturalHeight"]
                ratio = image["width"] / image["height"]
                assert ratio == pytest.approx(natural, rel=0.02), (name, path, width, image)


def test_camera_jpg_and_gifs_were_processed(site, browser):
    name, output, base = site
    _, camera, renditions = SITES[name]
    found = {i["alt"]: i for i in measure(browser, base, camera, 1280)}
    for alt, stem in (
        ("IMG_0001.JPG", "IMG_0001-"),
        ("anim.gif", "anim-"),
        ("still.gif", "still-"),
    ):
        assert found[alt]["currentSrc"].startswith(base + renditions + stem), found[alt]
    # An animation stays one: no still format is offered, and the file the browser chose moves.
    anim = found["anim.gif"]
    assert "image/avif" not in (anim["sources"] or [])
    chosen = output / anim["currentSrc"].removeprefix(base)
    assert read_back(chosen.read_bytes()).pages == 4
