"""Real MkDocs builds of tests/sites/mkdocs with the imgpipe plugin (the real engine)."""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
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
from sites import add_camera_page, copy_site  # noqa: E402

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


def strict_build(root) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` in `root`, as users run it (entry point, logger, --strict)."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_missing_image_fails_a_strict_build(broken_site):
    # The real command line: the entry point, the logger and --strict together.
    done = strict_build(broken_site)
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
        ({"widths": [0]}, r"'0' at imgpipe\.widths\[0\]: expected an integer from 1 to 10000"),
        ({"formats": ["jpg2"]}, r"did you mean 'jpeg'\?"),
        ({"cache_dir": "docs/.cache"}, "must be outside docs_dir"),
        ({"options": "160y"}, r"imgpipe\.options: .160y. at token 1"),
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


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Path:
    """The test site plus a page of camera files and GIFs, at one small width (issue 12)."""
    root = copy_site("mkdocs", tmp_path_factory.mktemp("camera") / "src", "docs/img")
    add_camera_page(root / "docs/camera.md", root / "docs/img", "img/")
    options = {"widths": [320], "formats": ["avif", "webp", "auto"], "jobs": 2}
    plugin = mkdocs_build(root, plugins={"imgpipe": options})
    assert plugin.site.summary.failed == 0
    return root


def _groups(html: str) -> dict[str, tuple[list[str], str]]:
    """alt -> (the <source> types, the <img> src) of each <picture> in `html`."""
    out = {}
    for picture in PICTURE.findall(html):
        tags = [attributes(t) for t in TAG.findall(picture)]
        out[tags[-1]["alt"]] = ([t["type"] for t in tags[:-1]], tags[-1]["src"])
    return out


def test_camera_file_names_and_gifs_become_pictures(camera):
    """Issue 12: `.JPG` and `.gif` were skipped (case-sensitive globs, no gif in the default
    include); an animation keeps its motion, a still GIF becomes images."""
    from animation_support import read_back

    html = (camera / "site/camera/index.html").read_text()
    groups = _groups(html)
    types, src = groups["IMG_0001.JPG"]
    assert types == ["image/avif", "image/webp"] and src.endswith(".jpg")
    assert "imgpipe/img/IMG_0001-320-auto." in src
    types, src = groups["anim.gif"]  # AVIF holds one frame: left out of an animation's group
    assert types == ["image/webp"] and src.endswith(".gif")
    webp = re.search(r'srcset="\.\./(imgpipe/img/anim-320-webp\.\w+\.webp) 320w"', html)[1]
    assert read_back((camera / "site" / webp).read_bytes()).pages == 4
    assert read_back((camera / "site/camera" / src).read_bytes()).pages == 4
    types, src = groups["still.gif"]
    assert "image/avif" in types and src.endswith((".jpg", ".png"))


def test_an_image_the_plugin_leaves_as_written_is_a_warning(camera, tmp_path, caplog):
    """Issue 12: a local image that gets no <picture> (a format imgpipe does not read, or no
    rule includes it) is a warning naming the page; one a rule excludes is only a note, and an
    SVG (a vector) is no news at all."""
    root = tmp_path / "site-src"
    shutil.copytree(camera, root, ignore=shutil.ignore_patterns("site"))
    (root / "docs/img/scan.bmp").write_bytes(b"BM" + bytes(64))
    (root / "docs/img/logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (root / "docs/odd.md").write_text(
        "# Odd\n\n![Scan](img/scan.bmp) ![Logo](img/logo.svg) ![Cam](img/IMG_0001.JPG)\n\n"
        "![Anim](img/anim.gif)\n"
    )
    options = {
        "include": ["**/*.{jpg,png}"],
        "exclude": ["img/IMG_*"],
        "widths": [320],
        "formats": ["webp"],
        "cache_dir": str(tmp_path / "cache"),
    }
    with caplog.at_level(logging.DEBUG, logger="mkdocs.plugins.imgpipe"):
        mkdocs_build(root, plugins={"imgpipe": options}, site_dir=str(tmp_path / "out"))
    said = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "mkdocs.plugins.imgpipe" and "'odd.md'" in r.getMessage()
    ]
    prefix = "imgpipe: page 'odd.md' uses image"
    assert said == [
        (
            "WARNING",
            f"{prefix} 'img/scan.bmp', left as written: imgpipe does not read .bmp files "
            "(it reads jpg, jpeg, jpe, png, webp, gif, tif, tiff, avif, heic, heif); "
            "convert it to PNG or JPEG",
        ),
        (
            "DEBUG",
            f"{prefix} 'img/logo.svg', left as written: an SVG is published as written "
            "(a vector needs no renditions)",
        ),
        ("INFO", f"{prefix} 'img/IMG_0001.JPG', left as written: rules[0].exclude leaves it out"),
        (
            "WARNING",
            f"{prefix} 'img/anim.gif', left as written: no rule includes 'img/anim.gif' "
            "(include: **/*.{jpg,png}); add a glob that matches it to `include`",
        ),
    ]


def test_an_image_left_as_written_fails_a_strict_build(camera, tmp_path):
    root = tmp_path / "site-src"
    shutil.copytree(camera, root, ignore=shutil.ignore_patterns("site", "odd.md"))
    yml = root / "mkdocs.yml"  # the fixture's options: everything is in the copied cache
    yml.write_text(yml.read_text().replace("[320, 640, 1280]", "[320]"))
    (root / "docs/scan.md").write_text("# Scan\n\n![Scan](img/scan.bmp)\n")
    (root / "docs/img/scan.bmp").write_bytes(b"BM" + bytes(64))
    done = strict_build(root)
    assert done.returncode == 1, done.stderr
    assert "imgpipe: page 'scan.md' uses image 'img/scan.bmp', left as written" in done.stderr
    assert "Aborted with 1 warnings in strict mode!" in done.stdout


VIDEO = re.compile(r"<video\b.*?</video>", re.S)


def test_video_formats_in_the_options_serve_animations_and_skip_stills(tmp_path):
    """Issue 12: `formats` with webm made every still image fail (a video needs an animation).
    A family's video is for animated sources and its one-frame formats (AVIF) for stills; a
    strict build of stills and an animated GIF passes."""
    root = copy_site("mkdocs", tmp_path / "site-src", "docs/img")
    add_camera_page(root / "docs/camera.md", root / "docs/img", "img/")
    yml = root / "mkdocs.yml"
    yml.write_text(
        yml.read_text()
        .replace("[320, 640, 1280]", "[320]")
        .replace("[avif, webp, auto]", "[webm, avif, webp, auto]")
    )
    done = strict_build(root)
    assert done.returncode == 0, done.stderr
    assert "video-needs-animation" not in done.stderr
    html = (root / "site/camera/index.html").read_text()
    groups = _groups(html)
    for still in ("IMG_0001.JPG", "still.gif"):
        types, _src = groups[still]
        assert types == ["image/avif", "image/webp"], (still, types)
    (video,) = VIDEO.findall(html)  # the animation, as the GIF it replaces plays
    assert 'aria-label="anim.gif"' in video and 'type="video/webm;' in video
    assert "anim.gif" not in groups
    built = sorted(p.name.split(".")[0] for p in (root / "site/imgpipe/img").iterdir())
    assert [n for n in built if n.startswith("anim-")] == [
        "anim-320-auto",
        "anim-320-poster",
        "anim-320-webm",
        "anim-320-webp",
    ]  # no still AVIF of the animation
    assert not [n for n in built if n.endswith(("-webm", "-poster")) and not n.startswith("anim")]


def test_unknown_plugin_key_warns_with_a_suggestion(built, tmp_path, caplog):
    root, _ = built
    options = {"width": [320], "cache_dir": str(tmp_path / "cache")}
    with caplog.at_level(logging.WARNING):
        mkdocs_build(root, plugins={"imgpipe": options}, site_dir=str(tmp_path / "out"))
    assert any(
        "Unrecognised configuration name: width; did you mean 'widths'?" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


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
