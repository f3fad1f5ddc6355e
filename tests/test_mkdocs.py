"""Real MkDocs builds of tests/sites/mkdocs with the imgpipe plugin (the real engine)."""

from __future__ import annotations

import logging
import os
import posixpath
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("pyvips")

from mkdocs.commands.build import build  # noqa: E402
from mkdocs.config import load_config  # noqa: E402
from mkdocs.exceptions import Abort  # noqa: E402
from sites import copy_site  # noqa: E402

from imgpipe.html import UnknownImage  # noqa: E402
from imgpipe.integrations.rewrite import attributes  # noqa: E402

PICTURE = re.compile(r"<picture>.*?</picture>", re.S)
TAG = re.compile(r"<(?:img|source)\b[^>]*>")


def mkdocs_build(root: Path, **overrides):
    """Build in-process; returns the imgpipe plugin (its `site.summary` tells what was done)."""
    config = load_config(str(root / "mkdocs.yml"), **overrides)
    build(config)
    return config.plugins["imgpipe"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, object]:
    root = copy_site("mkdocs", tmp_path_factory.mktemp("mkdocs") / "site-src", "docs/img")
    return root, mkdocs_build(root)


def urls_in(html: str) -> list[str]:
    """Every src and srcset URL of every <img> and <source>."""
    urls = []
    for tag in TAG.findall(html):
        attrs = attributes(tag)
        if attrs.get("src"):
            urls.append(attrs["src"])
        for candidate in (attrs.get("srcset") or "").split(","):
            if candidate.strip():
                urls.append(candidate.split()[0])
    return urls


def assert_urls_resolve(site: Path, page: str, html: str) -> int:
    """Each local URL, resolved from the page's own URL the way a browser does, is a file."""
    page_dir = posixpath.dirname(page)
    count = 0
    for url in urls_in(html):
        if urlsplit(url).scheme:
            continue
        target = posixpath.normpath(posixpath.join(page_dir, url))
        assert (site / target).is_file(), f"{page}: {url} -> {target} is missing"
        count += 1
    return count


def test_markdown_images_become_pictures_with_modern_sources(built):
    root, plugin = built
    html = (root / "site/index.html").read_text()
    pictures = PICTURE.findall(html)
    assert len(pictures) == 3  # two in the page, one from the theme footer
    first = pictures[0]
    assert first.index('type="image/avif"') < first.index('type="image/webp"') < first.index("<img")
    img = attributes(TAG.findall(first)[-1])
    assert img["alt"] == "A photo"
    assert (img["width"], img["height"]) == ("1280", "800")
    # The page's first picture is likely in the first viewport: not lazy (lazy-above-fold).
    assert "loading" not in img and img["decoding"] == "async"
    assert img["src"].startswith("imgpipe/img/photo-1280-auto.") and img["src"].endswith(".jpg")
    assert plugin.site.summary.built == 18 and plugin.site.summary.failed == 0


def test_no_markdown_image_is_left_as_a_plain_img(built):
    root, _ = built
    for page in ("index.html", "sub/page/index.html", "sub/deeper/more/index.html"):
        html = PICTURE.sub("", (root / "site" / page).read_text())
        plain = [attributes(t)["src"] for t in re.findall(r"<img\b[^>]*>", html)]
        assert all(src.startswith("data:") for src in plain), (page, plain)


@pytest.mark.parametrize(
    "page", ["index.html", "sub/page/index.html", "sub/deeper/more/index.html"]
)
def test_urls_resolve_from_nested_pages(built, page):
    root, _ = built
    html = (root / "site" / page).read_text()
    assert assert_urls_resolve(root / "site", page, html) >= 7


def test_title_class_id_kept_and_width_only_sets_proportional_height(built):
    root, _ = built
    html = (root / "site/sub/page/index.html").read_text()
    banner = next(attributes(t) for t in TAG.findall(html) if 'id="banner"' in t)
    assert banner["class"] == "hero" and banner["title"] == "A title"
    assert banner["alt"] == "Wide banner"
    assert (banner["width"], banner["height"]) == ("640", "320")
    assert banner["sizes"] == "(max-width: 640px) 100vw, 640px"
    assert banner["loading"] == "lazy"  # the page's second picture


def test_authors_loading_attribute_wins(built):
    root, _ = built
    html = (root / "site/index.html").read_text()
    eager = next(attributes(t) for t in TAG.findall(html) if 'alt="Eager"' in t)
    assert eager["loading"] == "eager"


def test_lightbox_link_goes_around_the_picture_never_inside(built):
    root, _ = built
    html = (root / "site/sub/page/index.html").read_text()
    assert '<a class="glightbox" href="../../img/photo.jpg"><picture>' in html
    for picture in PICTURE.findall(html):
        assert "<a " not in picture and "</a>" not in picture
    assert "</picture></a>" in html


def test_data_uri_is_left_alone(built):
    root, _ = built
    html = (root / "site/index.html").read_text()
    assert re.search(
        r'<a class="glightbox" href="data:[^"]*"><img alt="dot" [^>]*'
        r'src="data:image/gif;base64,[^>]*></a>',
        html,
    )


def test_cache_is_outside_docs_and_site(built):
    root, _ = built
    assert (root / ".imgpipe-cache/state").is_dir()
    assert not list((root / "site").rglob("*.sqlite*"))
    assert not (root / "site/imgpipe/imgpipe-manifest.json").exists()
    assert not list((root / "docs").glob(".imgpipe*"))


def test_second_build_encodes_nothing(built):
    root, _ = built
    before = {p: p.read_bytes() for p in (root / "site").rglob("*") if p.is_file()}
    plugin = mkdocs_build(root)
    summary = plugin.site.summary
    assert (summary.built, summary.cached, summary.failed) == (0, 18, 0)
    after = {p: p.read_bytes() for p in (root / "site").rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    assert [p for p in before if "imgpipe" in p.parts and after[p] != before[p]] == []


def test_without_directory_urls(built, tmp_path):
    root, _ = built
    plugin = mkdocs_build(root, use_directory_urls=False, site_dir=str(tmp_path / "flat"))
    assert plugin.site.summary.built == 0  # same cache: nothing to encode
    html = (tmp_path / "flat/sub/page.html").read_text()
    assert 'srcset="../imgpipe/img/photo-320-avif.' in html
    assert assert_urls_resolve(tmp_path / "flat", "sub/page.html", html) >= 7
    deep = (tmp_path / "flat/sub/deeper/more.html").read_text()
    assert assert_urls_resolve(tmp_path / "flat", "sub/deeper/more.html", deep) >= 7


@pytest.fixture
def broken_site(built, tmp_path) -> Path:
    """The test site plus a nested page with a missing image and a remote one."""
    root = copy_site("mkdocs", tmp_path / "site-src", "docs/img")
    (root / "docs/sub/broken.md").write_text(
        "# Broken\n\n![Gone](../img/phot.jpg)\n\n![Remote](https://example.com/remote.jpg)\n"
    )
    # MkDocs' own warning about the link is turned down, so only imgpipe's can fail --strict.
    with open(root / "mkdocs.yml", "a") as fh:
        fh.write("validation:\n  links:\n    not_found: info\n")
    return root


def test_missing_image_warns_naming_page_and_path(broken_site, caplog):
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.imgpipe"):
        mkdocs_build(broken_site)
    messages = [r.getMessage() for r in caplog.records if r.name == "mkdocs.plugins.imgpipe"]
    assert messages == [
        "imgpipe: page 'sub/broken.md' uses image '../img/phot.jpg', but "
        "'img/phot.jpg' is not in the docs; did you mean 'img/photo.jpg'?"
    ]
    html = (broken_site / "site/sub/broken/index.html").read_text()
    assert '<img alt="Remote" src="https://example.com/remote.jpg" />' in html
    assert '<img alt="Gone" src="../img/phot.jpg" />' in html


def test_missing_image_fails_a_strict_build(broken_site):
    # The real command line: the entry point, the logger and --strict together.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"],
        cwd=broken_site,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 1, done.stderr
    assert "imgpipe: page 'sub/broken.md' uses image '../img/phot.jpg'" in done.stderr
    assert "Aborted with 1 warnings in strict mode!" in done.stdout


def test_strict_build_of_the_clean_site_passes(built):
    root, _ = built
    config = load_config(str(root / "mkdocs.yml"), strict=True)
    build(config)  # raises Abort on any warning


def test_config_file_rules_and_a_theme_asking_for_an_image_they_skip(built, tmp_path):
    root, _ = built
    toml = (
        'source = "docs"\noutput = "ignored/by/the/plugin"\n'
        '[[rules]]\ninclude = ["img/*.{jpg,png}"]\nexclude = ["img/wide.png"]\n'
        'widths = [200]\nformats = ["webp"]\n'
    )
    (root / "imgpipe.toml").write_text(toml)
    options = {
        "plugins": {
            "imgpipe": {"config_file": "imgpipe.toml", "cache_dir": str(tmp_path / "cache")}
        },
        "site_dir": str(tmp_path / "out"),
    }
    # The theme's footer asks for wide.png, which these rules leave out: a clear error.
    with pytest.raises(UnknownImage, match="'img/wide.png' is not a source in .*manifest"):
        mkdocs_build(root, **options)
    (root / "imgpipe.toml").write_text(toml.replace('exclude = ["img/wide.png"]\n', ""))
    plugin = mkdocs_build(root, **options)
    assert sorted(plugin.site.images.sources) == ["img/photo.jpg", "img/wide.png"]
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "out/imgpipe/img").iterdir()) == [
        "photo-200-webp",
        "wide-200-webp",
    ]
    assert not (root / "ignored").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"widths": [0]}, r"rules\[0\]\.widths\[0\]: expected an integer from 1 to 10000"),
        ({"formats": ["jpg2"]}, r"did you mean 'jpeg'\?"),
        ({"cache_dir": "docs/.cache"}, "must be outside docs_dir"),
        ({"config_file": "nope.toml"}, "config file .*nope.toml does not exist"),
    ],
)
def test_bad_options_stop_the_build_with_the_key_path(built, tmp_path, caplog, options, message):
    root, _ = built
    options = {"cache_dir": str(tmp_path / "cache"), **options}
    with pytest.raises(Abort):
        mkdocs_build(root, plugins={"imgpipe": options}, site_dir=str(tmp_path / "out"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("imgpipe: ")
    assert re.search(message, errors[0]), errors[0]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _page(url: str) -> str:
    return _get(url).decode()


def _wait_for(predicate, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_serve_rebuilds_changed_images_and_watches_imgpipe_toml(tmp_path):
    root = copy_site("mkdocs", tmp_path / "site-src", "docs/img")
    (root / "imgpipe.toml").write_text(
        '[[rules]]\ninclude = ["**/*.{jpg,png}"]\nwidths = [200]\nformats = ["webp"]\n'
    )
    yml = root / "mkdocs.yml"
    yml.write_text(
        re.sub(
            r"  - imgpipe:\n(      .*\n)+",
            "  - imgpipe:\n      config_file: imgpipe.toml\n",
            yml.read_text(),
        )
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    log = open(tmp_path / "serve.log", "w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"],
        cwd=root,
        stdout=log,
        stderr=log,
    )
    try:
        first = _wait_for(lambda: re.findall(r"img/photo-200-webp\.\w+\.webp", _page(url)))[0]
        assert "'imgpipe.toml'" in (tmp_path / "serve.log").read_text()  # watched
        assert _get(url + "imgpipe/" + first)[8:12] == b"WEBP"  # the rendition is served
        # A changed image is re-encoded: its name (a content hash) changes.
        (root / "docs/img/photo.jpg").write_bytes(
            (root / "docs/img/photo.jpg").read_bytes() + b"\0"
        )  # same pixels, new bytes
        second = _wait_for(
            lambda: [
                m for m in re.findall(r"img/photo-200-webp\.\w+\.webp", _page(url)) if m != first
            ]
        )[0]
        assert _get(url + "imgpipe/" + second)[8:12] == b"WEBP"
        # A rule change in imgpipe.toml is picked up without restarting.
        (root / "imgpipe.toml").write_text(
            (root / "imgpipe.toml").read_text().replace("[200]", "[120]")
        )
        _wait_for(lambda: "img/photo-120-webp." in _page(url))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
