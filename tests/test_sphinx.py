"""Real Sphinx builds (sphinx-build in a subprocess, as users run it) of tests/sites/sphinx with
the imgpipe extension and the real engine; the pages are then opened in Chromium.

The site has its `_build` inside the source folder (the sphinx-quickstart layout), documents
two levels deep, `image` and `figure` directives with relative and absolute paths and every
sizing option, and MyST Markdown images. One build (with -j 2) is shared by most tests.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")
pytest.importorskip("pyvips")

from sites import copy_site, make_images  # noqa: E402

from imgpipe.integrations.rewrite import attributes  # noqa: E402

PICTURE = re.compile(r"<picture>.*?</picture>", re.S)
IMG = re.compile(r"<img\b[^>]*>")
SUMMARY = re.compile(r"imgpipe: (\d+) sources, (\d+) renditions built, (\d+) cached, (\d+) failed")
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
RENDITIONS = 2 * 2 * 2  # sources x widths x formats
# page -> pictures on it
PAGES = {
    "index.html": 5,
    "guide/index.html": 2,
    "guide/deep/page.html": 3,
    "guide/myst.html": 2,
    "notes.html": 1,
}


def sphinx_build(
    src: Path, out: Path, *args: str, builder: str = "html", check: bool = True
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", builder, *args, str(src), str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
        # The progress lines the tests read are plain only without colour, which Sphinx turns
        # on by itself under CI=true (as CI runs this suite).
        env={**os.environ, "NO_COLOR": "1"},
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def summary(done: subprocess.CompletedProcess) -> tuple[int, ...] | None:
    """(sources, built, cached, failed) from imgpipe's line in Sphinx's output."""
    found = SUMMARY.search(done.stdout + done.stderr)
    return tuple(int(n) for n in found.groups()) if found else None


def by_alt(page: Path) -> dict[str, dict[str, str | None]]:
    """The attributes of every `<img>` on a page, by alt text."""
    return {a["alt"]: a for a in map(attributes, IMG.findall(page.read_text()))}


def urls_in(html: str) -> list[str]:
    urls = []
    for tag in re.findall(r"<(?:img|source)\b[^>]*>", html):
        attrs = attributes(tag)
        urls += [attrs["src"]] if attrs.get("src") else []
        urls += [c.split()[0] for c in (attrs.get("srcset") or "").split(",") if c.strip()]
    return urls


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    src = copy_site("sphinx", tmp_path_factory.mktemp("sphinx") / "docs", "img")
    done = sphinx_build(src, src / "_build/html", "-j", "2", "-d", str(src / "_build/doctrees"))
    return src, done


@pytest.fixture(scope="module")
def html(project) -> Path:
    return project[0] / "_build/html"


def test_a_parallel_build_encodes_each_rendition_once(project):
    src, done = project
    assert summary(done) == (2, RENDITIONS, 0, 0)  # renditions in _build never become sources
    # -j 2 read and wrote in chunks (a serial build names one document per step).
    assert re.search(r"reading sources\.\.\. \[\s*\d+%\] \S+ \.\. \S+", done.stdout)
    assert re.search(r"writing output\.\.\. \[\s*\d+%\] \S+ \.\. \S+", done.stdout)
    assert "WARNING" not in done.stderr, done.stderr


def test_image_keeps_alt_and_name_and_gets_width_and_height(html):
    img = by_alt(html / "index.html")["A photo"]
    assert (img["width"], img["height"]) == ("320", "200")  # the largest rendition
    assert img["id"] == "first-photo"
    assert img["sizes"] == "(min-width: 60rem) 40rem, 100vw"  # the `sizes` option
    assert img["style"] == "height:auto"  # alabaster's max-width must not squash it
    # The first picture of a page is not lazy (it is likely in the first viewport), the others
    # are; on every page.
    for page in PAGES:
        loading = [img.get("loading") for img in by_alt(html / page).values()]
        assert loading == [None] + ["lazy"] * (len(loading) - 1), page


def test_figure_options_class_align_target_and_px_width_narrowing_sizes(html):
    page = (html / "index.html").read_text()
    figure = re.search(r'<figure class="align-center"[^>]*>.*?</figure>', page, re.S).group()
    assert (
        '<a class="reference external image-reference" href="https://example.com/"><picture>'
        in (figure)
    )
    assert "The caption." in figure
    img = attributes(IMG.search(figure).group())
    assert (img["alt"], img["class"], img["width"], img["height"]) == (
        "A wide image",
        "framed",
        "200",
        "100",
    )
    assert img["sizes"] == "(max-width: 200px) 100vw, 200px"
    source = attributes(re.search(r"<source\b[^>]*>", figure).group())
    assert (source["type"], source["sizes"]) == ("image/webp", img["sizes"])


@pytest.mark.parametrize(
    "page, alt, width, height, style, sizes",
    [
        # :scale: 25% of 1280x800; Sphinx links a resized image to its original
        ("index.html", "Scaled", "320", "200", "height:auto", "(max-width: 320px) 100vw, 320px"),
        # :width: 50%: a style, the height follows
        ("index.html", "Half", "320", "160", "height:auto;width: 50%; height: auto;", None),
        # :height: 100 only: the width follows in proportion
        ("index.html", "Short", "160", "100", "height:auto", "(max-width: 160px) 100vw, 160px"),
        ("guide/index.html", "Wide, one level down", "320", "160", "height:auto", None),
        ("guide/deep/page.html", "Inline", "32", "20", "height:auto", "(max-width: 32px) 100vw, 32px"),
        ("guide/myst.html", "A MyST photo", "320", "200", "height:auto", None),
        ("guide/myst.html", "A MyST figure", "240", "120", "height:auto", "(max-width: 240px) 100vw, 240px"),
    ],
)  # fmt: skip
def test_sizing_options(html, page, alt, width, height, style, sizes):
    img = by_alt(html / page)[alt]
    assert (img["width"], img["height"], img["style"]) == (width, height, style)
    assert img["sizes"] == (sizes or "(min-width: 60rem) 40rem, 100vw")


def test_align_class_and_scaled_image_link(html):
    page = (html / "guide/index.html").read_text()
    assert by_alt(html / "guide/index.html")["Wide, one level down"]["class"] == "align-right"
    scaled = (html / "index.html").read_text()
    assert '<a class="reference internal image-reference" href="_images/photo.jpg"><picture>' in (
        scaled
    )
    assert (html / "_images/photo.jpg").is_file()  # the original, for that link
    assert "image-reference" not in (html / "notes.html").read_text()  # :class: no-scaled-link
    assert '<figure class="align-default"' in page


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_rendition_url_resolves_from_every_depth(html, page):
    text = (html / page).read_text()
    assert len(PICTURE.findall(text)) == PAGES[page]
    assert "<img" not in PICTURE.sub("", text)  # no image left as Sphinx wrote it
    depth = page.count("/")
    for url in urls_in(text):
        assert url.startswith("../" * depth + "_images/imgpipe/img/"), url
        assert (html / posixpath.normpath(posixpath.join(posixpath.dirname(page), url))).is_file()


def test_renditions_published_under_images_and_cache_under_doctrees(project, html):
    src, _done = project
    cache = src / "_build/doctrees/imgpipe"
    manifest = json.loads((cache / "site/imgpipe-manifest.json").read_text())
    wanted = {r["path"] for s in manifest["sources"].values() for r in s["renditions"].values()}
    published = {
        p.relative_to(html / "_images/imgpipe").as_posix()
        for p in (html / "_images/imgpipe").rglob("*")
        if p.is_file()
    }
    assert published == wanted and len(wanted) == RENDITIONS
    assert (cache / "state").is_dir()


def test_second_build_encodes_nothing_and_writes_the_same_pages(project, html):
    src, _done = project
    before = {page: (html / page).read_text() for page in PAGES}
    done = sphinx_build(src, html, "-j", "2", "-d", str(src / "_build/doctrees"))
    assert summary(done) == (2, 0, RENDITIONS, 0)
    assert {page: (html / page).read_text() for page in PAGES} == before


@pytest.mark.parametrize(
    "builder, page, prefix",
    [
        ("dirhtml", "guide/deep/page/index.html", "../../../_images/imgpipe/img/"),
        ("singlehtml", "index.html", "_images/imgpipe/img/"),
    ],
)
def test_dirhtml_and_singlehtml(project, builder, page, prefix):
    src, _done = project
    out = src / "_build" / builder
    done = sphinx_build(src, out, "-d", str(src / "_build/doctrees"), builder=builder)
    assert summary(done) == (2, 0, RENDITIONS, 0)  # the html build's cache
    text = (out / page).read_text()
    urls = urls_in(text)
    assert urls and PICTURE.search(text)
    for url in urls:
        assert url.startswith(prefix), url
        assert (out / posixpath.normpath(posixpath.join(posixpath.dirname(page), url))).is_file()
    if builder == "singlehtml":  # every document in one page
        assert len(PICTURE.findall(text)) == sum(PAGES.values())


@pytest.mark.parametrize("builder", ["latex", "epub"])
def test_other_builders_keep_the_original_images(project, tmp_path, builder):
    src, _done = project
    out = tmp_path / builder
    done = sphinx_build(src, out, "-d", str(tmp_path / "doctrees"), builder=builder)
    assert summary(done) is None  # no imgpipe build at all
    assert not (out / "_images/imgpipe").exists()
    if builder == "latex":
        tex = next(out.glob("*.tex")).read_text()
        assert r"\sphinxincludegraphics" in tex and "{{photo}.jpg}" in tex
    else:
        text = (out / "index.xhtml").read_text()
        assert "<picture" not in text and 'src="_images/photo.jpg"' in text


def small_project(root: Path, conf: str, index: str) -> Path:
    make_images(root / "img")
    (root / "conf.py").write_text('extensions = ["imgpipe.integrations.sphinx"]\n' + conf)
    (root / "index.rst").write_text(index)
    return root


def test_an_edited_image_rewrites_its_page(tmp_path):
    """What sphinx-autobuild relies on: an image is a dependency of its document, so an edit
    has the next (incremental) build encode it and write the page again."""
    src = small_project(
        tmp_path / "docs",
        'imgpipe = {"widths": [160], "formats": ["auto"]}\n',
        "Edit\n====\n\n.. image:: img/photo.jpg\n   :alt: Edited\n",
    )
    out = tmp_path / "html"
    done = sphinx_build(src, out)
    assert summary(done) == (2, 2, 0, 0)
    old = by_alt(out / "index.html")["Edited"]
    assert (old["width"], old["height"]) == ("160", "100")
    import pyvips

    pyvips.Image.black(400, 400).jpegsave(str(src / "img/photo.jpg"))  # now square
    done = sphinx_build(src, out)
    assert summary(done) == (2, 1, 1, 0)
    new = by_alt(out / "index.html")["Edited"]
    assert (new["width"], new["height"]) == ("160", "160")
    assert (out / new["src"]).is_file() and not (out / old["src"]).exists()


def test_sphinx_autobuild_picks_up_an_edited_image(tmp_path):
    src = small_project(
        tmp_path / "docs",
        'imgpipe = {"widths": [160], "formats": ["auto"]}\n',
        "Edit\n====\n\n.. image:: img/photo.jpg\n   :alt: Edited\n",
    )
    page, log = tmp_path / "html/index.html", tmp_path / "autobuild.log"
    command = [sys.executable, "-m", "sphinx_autobuild", "--host", "127.0.0.1", "--port", "0"]
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*command, "--no-color", str(src), str(tmp_path / "html")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def shown() -> tuple[str | None, str | None] | None:
        img = by_alt(page).get("Edited") if page.exists() else None
        return (img["width"], img["height"]) if img else None

    def wait_for(done, then=None) -> None:
        deadline = time.monotonic() + 300  # a hang guard, not a timing goal
        while not done():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            if then:
                then()
            time.sleep(0.5)

    def edit() -> None:
        # sphinx-autobuild says it is waiting for changes a moment before its watcher is
        # set up, and misses an edit made then: edit until it sees one.
        if "Detected changes" not in log.read_text():
            pyvips.Image.black(400, 400).jpegsave(str(src / "img/photo.jpg"))  # now square

    import pyvips

    try:
        wait_for(lambda: "Waiting to detect changes" in log.read_text())  # built, watching
        assert shown() == ("160", "100")
        wait_for(lambda: shown() == ("160", "160"), then=edit)
        assert (page.parent / by_alt(page)["Edited"]["src"]).is_file()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_an_edited_imgpipe_toml_rewrites_the_pages_it_changes(tmp_path):
    """Sphinx cannot see an imgpipe.toml; the renditions it changes mark their pages."""
    src = small_project(
        tmp_path / "docs",
        'imgpipe = {"config_file": "imgpipe.toml"}\n',
        "Toml\n====\n\n.. image:: img/photo.jpg\n   :alt: From toml\n\n"
        ".. image:: img/logo.svg\n\n.. image:: https://example.com/remote.jpg\n\n"
        ".. toctree::\n\n   other\n",
    )
    (src / "img/logo.svg").write_text(SVG)
    (src / "other.rst").write_text("Other\n=====\n\nNo image.\n")
    rule = '[[rules]]\ninclude = ["**/*.jpg"]\nwidths = [{}]\nformats = ["auto"]\n'
    (src / "imgpipe.toml").write_text(rule.format(160))

    def build(builder: str) -> subprocess.CompletedProcess:  # one environment, as with -M
        return sphinx_build(
            src, tmp_path / builder, "-d", str(tmp_path / "doctrees"), builder=builder
        )

    def width(builder: str) -> str | None:
        return by_alt(tmp_path / builder / "index.html")["From toml"]["width"]

    build("html")
    build("dirhtml")
    assert width("html") == width("dirhtml") == "160"
    # What the rules do not cover, and remote images, stay as Sphinx writes them.
    page = (tmp_path / "html/index.html").read_text()
    assert '<img alt="_images/logo.svg" src="_images/logo.svg" />' in page
    assert (
        '<img alt="https://example.com/remote.jpg" src="https://example.com/remote.jpg" />' in page
    )
    (src / "imgpipe.toml").write_text(rule.format(200))
    assert summary(build("dirhtml")) == (1, 1, 0, 0)
    assert width("dirhtml") == "200"
    done = build("html")  # the dirhtml build saw the change first: html must still hear of it
    assert summary(done) == (1, 0, 1, 0)
    assert width("html") == "200"
    assert re.search(r"writing output\.\.\. \[100%\] index\n", done.stdout)  # only that page


def test_warnings_name_the_document_and_line_and_fail_with_W(tmp_path):
    src = small_project(
        tmp_path / "docs",
        'imgpipe = {"widths": [160], "formats": ["auto"], "width": 3}\n',
        "Bad\n===\n\n"
        ".. image:: img/missing.jpg\n\n"  # line 4
        ".. image:: img/broken.jpg\n\n"  # line 6
        ".. image:: img/photo.jpg\n   :width: abc\n",  # line 8
    )
    (src / "img/broken.jpg").write_bytes((src / "img/photo.jpg").read_bytes()[:500])
    done = sphinx_build(src, tmp_path / "html", "-W", check=False)
    assert done.returncode == 1
    doc = src / "index.rst"
    assert f"{doc}:4: WARNING: image file not readable: img/missing.jpg" in done.stderr
    assert (
        f"{doc}:6: WARNING: imgpipe: 'img/broken.jpg' has no renditions (its build failed, "
        "see above); the original is shown"
    ) in done.stderr
    assert "WARNING: imgpipe: img/broken.jpg failed at load: truncated" in done.stderr
    assert f'{doc}:8: ERROR: Error in "image" directive' in done.stderr
    assert (
        "WARNING: imgpipe: unknown-key: 'width' at imgpipe.width: expected one of config_file, "
        "include, exclude, widths, formats, options, sizes, art, jobs, cache_dir; did you mean "
        "'widths'?"
    ) in done.stderr
    # Without -W the build succeeds: the other images were built (by the -W run, which goes
    # on to the end since Sphinx 8.1), the broken one is shown as it is.
    done = sphinx_build(src, tmp_path / "html")
    assert summary(done) == (3, 0, 2, 1)
    assert (
        '<img alt="_images/broken.jpg" src="_images/broken.jpg" />'
        in (tmp_path / "html/index.html").read_text()
    )


@pytest.mark.parametrize(
    "conf, message",
    [
        (
            'imgpipe = {"widths": "wide"}',
            "imgpipe: bad-type: 'wide' at imgpipe.widths: expected a non-empty list of integers",
        ),
        ('imgpipe = {"config_file": "nope.toml"}', "imgpipe: no-config: config file "),
        (
            'imgpipe = {"cache_dir": 5}',
            "imgpipe: bad-type: '5' at imgpipe.cache_dir: expected a path, as a string",
        ),
        (
            'imgpipe = ["widths"]',
            "imgpipe: bad-type: \"['widths']\" at imgpipe: expected a dict of imgpipe options",
        ),
    ],
)
def test_bad_settings_fail_the_build_with_one_error_line(tmp_path, conf, message):
    """Issue 12: a bad value ended in Sphinx's crash report (versions, traceback, "please
    report this"); now it is one error line naming the key, and the build fails."""
    src = small_project(tmp_path / "docs", conf + "\n", "X\n=\n\n.. image:: img/photo.jpg\n")
    done = sphinx_build(src, tmp_path / "html", check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], out
    assert "Traceback" not in out and "Versions" not in out and "report" not in out
    assert "<picture>" not in (tmp_path / "html/index.html").read_text()


@pytest.fixture(scope="module")
def themes(project) -> dict[str, Path]:
    """The site built with each theme: alabaster (Sphinx's default) and Furo."""
    src, _done = project
    furo = src / "_build/furo"
    sphinx_build(src, furo, "-D", "html_theme=furo", "-d", str(src / "_build/doctrees-furo"))
    return {"alabaster": src / "_build/html", "furo": furo}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    from browser_support import chromium, require_chromium

    require_chromium()
    with chromium(sync_api) as browser:
        yield browser


@pytest.mark.parametrize("theme", ["alabaster", "furo"])
def test_every_image_loads_undistorted_with_width_and_height(themes, browser, theme):
    from browser_support import serve, url_of, visit

    server = serve(themes[theme])
    try:
        for viewport in (360, 1280):  # a phone, where max-width shrinks images, and a desktop
            for page in PAGES:
                images, bad = visit(browser, url_of(server), page, viewport)
                assert bad == [], (theme, page)
                assert len(images) == PAGES[page], (theme, page)
                for image in images:
                    where = (theme, viewport, page, image["src"])
                    assert image["error"] is None and image["naturalWidth"] > 0, where
                    assert image["width"] and image["height"], where
                    assert "/_images/imgpipe/" in image["currentSrc"], where
                    shown_w, shown_h = image["shown"]
                    assert shown_w > 0 and shown_h > 0, where
                    ratio = (shown_w / shown_h) / (image["naturalWidth"] / image["naturalHeight"])
                    assert abs(ratio - 1) <= 0.02, (where, image)
    finally:
        server.shutdown()
        server.server_close()
