"""Real Pelican builds of tests/sites/pelican with the imgpipe plugin (the real engine)."""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pelican")
pytest.importorskip("pyvips")

from pelican import Pelican  # noqa: E402
from pelican.settings import read_settings  # noqa: E402
from sites import add_camera_page, copy_site  # noqa: E402

from imgpipe.integrations import pelican as plugin  # noqa: E402
from imgpipe.integrations.rewrite import attributes  # noqa: E402

PICTURE = re.compile(r"<picture>.*?</picture>", re.S)
TAG = re.compile(r"<(?:img|source)\b[^>]*>")
RENDITIONS = 2 * 2 * 3  # widths x formats x (photo, wide, attached)


def make(root: Path) -> Path:
    copy_site("pelican", root, "content/images")
    shutil.copy(root / "content/images/photo.jpg", root / "content/articles/nested/attached.jpg")
    return root


def pelican_build(root: Path, monkeypatch, **override) -> plugin._Run | None:
    """Build in-process from the site's directory (THEME_TEMPLATES_OVERRIDES is cwd-relative);
    returns the plugin's record of the run (its summary tells what was encoded)."""
    monkeypatch.chdir(root)
    settings = read_settings(str(root / "pelicanconf.py"), override=override)
    Pelican(settings).run()
    return plugin.run_of(settings)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = make(tmp_path_factory.mktemp("pelican") / "blog")
    with pytest.MonkeyPatch.context() as monkeypatch:
        run = pelican_build(root, monkeypatch)
    assert run.site.summary.built == RENDITIONS and run.site.summary.failed == 0
    return root


def pelican_command(root: Path, *flags: str) -> tuple[subprocess.CompletedProcess, str]:
    """`pelican content` run as a user runs it, in its own process; the run and its output."""
    done = subprocess.run(
        [sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", *flags],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
    )
    return done, done.stdout + done.stderr


def urls_in(html: str) -> list[str]:
    urls = []
    for tag in TAG.findall(html):
        attrs = attributes(tag)
        urls += [attrs["src"]] if attrs.get("src") else []
        urls += [c.split()[0] for c in (attrs.get("srcset") or "").split(",") if c.strip()]
    return urls


def picture_urls(html: str) -> list[str]:
    return [url for picture in PICTURE.findall(html) for url in urls_in(picture)]


def resolve(output: Path, page: str, url: str) -> Path:
    """The output file a browser would fetch for `url` on `page` (site served at its root)."""
    if url.startswith("/"):
        return output / url[1:]
    return output / posixpath.normpath(posixpath.join(posixpath.dirname(page), url))


def test_article_images_become_pictures_keeping_title_and_class(site):
    html = (site / "output/first.html").read_text()
    pictures = PICTURE.findall(html)
    assert len(pictures) == 3  # two in the article, one from the theme (the filter)
    banner = next(attributes(t) for t in TAG.findall(html) if 'id="banner"' in t)
    assert (banner["class"], banner["title"], banner["alt"]) == ("hero", "The title", "Wide")
    assert (banner["width"], banner["height"]) == ("640", "320")
    assert (banner["loading"], banner["decoding"]) == ("lazy", "async")
    assert 'class="theme-banner"' in pictures[2]
    assert '<img alt="Remote" src="https://example.com/remote.jpg">' in html


@pytest.mark.parametrize(
    "page, count",
    [("first.html", 3), ("nested/second.html", 3), ("pages/about.html", 1), ("index.html", 4)],
)
def test_every_rendition_url_exists_in_the_output(site, page, count):
    # index.html: the article summaries are rewritten too (written through the same writer).
    html = (site / "output" / page).read_text()
    urls = picture_urls(html)
    assert len(PICTURE.findall(html)) == count
    assert urls and all(url.startswith("/imgpipe/") for url in urls)
    for url in urls:
        assert resolve(site / "output", page, url).is_file(), url


def test_static_relative_and_attach_links(site):
    html = (site / "output/nested/second.html").read_text()
    again, attached, _theme = PICTURE.findall(html)
    assert 'alt="Again"' in again and "/imgpipe/images/photo-320-webp." in again
    assert (
        'alt="Attached"' in attached and "/imgpipe/articles/nested/attached-640-auto." in attached
    )


def test_an_authors_loading_attribute_wins(site):
    html = (site / "output/pages/about.html").read_text()
    assert 'alt="About photo" loading="eager" decoding="async"' in html


def test_cache_lives_under_cache_path(site):
    assert (site / "cache/imgpipe/state").is_dir()
    assert not list((site / "output").rglob("*.sqlite*"))


def test_relative_urls(site, tmp_path, monkeypatch):
    out = tmp_path / "relative"
    run = pelican_build(site, monkeypatch, RELATIVE_URLS=True, OUTPUT_PATH=str(out))
    assert run.site.summary.built == 0  # the same cache
    for page in ("first.html", "nested/second.html"):
        urls = picture_urls((out / page).read_text())
        assert urls and not any(u.startswith("/") for u in urls)
        for url in urls:
            assert resolve(out, page, url).is_file(), (page, url)
    assert '"../imgpipe/images/photo-320-webp.' in (out / "nested/second.html").read_text()


def test_absolute_siteurl(site, tmp_path, monkeypatch):
    out = tmp_path / "absolute"
    pelican_build(site, monkeypatch, SITEURL="https://example.com/blog", OUTPUT_PATH=str(out))
    for page in ("first.html", "nested/second.html"):
        urls = picture_urls((out / page).read_text())
        assert urls and all(u.startswith("https://example.com/blog/imgpipe/") for u in urls)
        for url in urls:
            assert (out / url.removeprefix("https://example.com/blog/")).is_file(), url


def test_second_build_after_deleting_output_encodes_nothing(site, monkeypatch):
    before = (site / "output/first.html").read_text()
    run = pelican_build(site, monkeypatch, DELETE_OUTPUT_DIRECTORY=True)
    summary = run.site.summary
    assert (summary.built, summary.cached, summary.failed) == (0, RENDITIONS, 0)
    assert (site / "output/first.html").read_text() == before
    for url in picture_urls(before):
        assert resolve(site / "output", "first.html", url).is_file()


def test_missing_image_warns_naming_the_article_and_path(tmp_path, monkeypatch, caplog):
    root = make(tmp_path / "blog")
    (root / "content/articles/broken.md").write_text(
        "Title: Broken\nDate: 2024-01-04\nSlug: broken\n\n![Gone](images/phot.jpg)\n"
    )
    with caplog.at_level(logging.WARNING):
        pelican_build(root, monkeypatch)
    ours = [r.getMessage() for r in caplog.records if r.name == "pelican.plugins.imgpipe"]
    assert ours == [
        "imgpipe: articles/broken.md uses image 'images/phot.jpg', but "
        "'images/phot.jpg' is not in the output; is it under STATIC_PATHS?"
    ]
    assert '<img alt="Gone" src="images/phot.jpg">' in (root / "output/broken.html").read_text()


def camera_blog(tmp_path, extra: str = ""):
    """The blog with a page of camera-named photos and GIFs (sites.add_camera_page)."""
    root = make(tmp_path / "blog")
    add_camera_page(
        root / "content/articles/camera.md",
        root / "content/images",
        "{static}/images/",
        header="Title: Camera\nDate: 2024-01-05\nSlug: camera\n\n" + extra,
    )
    return root


def test_camera_file_names_and_gifs_become_pictures_and_a_bmp_is_a_warning(
    tmp_path, monkeypatch, caplog
):
    """Issue 12: `.JPG` and `.gif` were skipped without a word."""
    root = camera_blog(tmp_path, "![Scan]({static}/images/scan.bmp)\n")
    (root / "content/images/scan.bmp").write_bytes(b"BM" + bytes(64))
    with caplog.at_level(logging.WARNING):
        run = pelican_build(
            root, monkeypatch, IMGPIPE={"widths": [320], "formats": ["webp", "auto"]}
        )
    assert run.site.summary.failed == 0
    html = (root / "output/camera.html").read_text()
    pictures = {attributes(TAG.findall(p)[-1])["alt"]: p for p in PICTURE.findall(html)}
    assert "/imgpipe/images/IMG_0001-320-auto." in pictures["IMG_0001.JPG"]
    assert (
        '"image/webp"' in pictures["anim.gif"]
        and "/imgpipe/images/anim-320-auto." in pictures["anim.gif"]
    )
    assert "/imgpipe/images/still-320-" in pictures["still.gif"]
    assert ours(caplog, logging.WARNING) == [
        "imgpipe: articles/camera.md uses image 'images/scan.bmp', left as written: imgpipe "
        "does not read .bmp files (it reads jpg, jpeg, jpe, png, webp, gif, tif, tiff, avif, "
        "heic, heif); convert it to PNG or JPEG"
    ]


def test_video_formats_serve_animations_and_skip_stills_with_fatal_warnings(tmp_path):
    """Issue 12: `formats` with webm made every still image fail. `pelican --fatal warnings`
    on stills and an animated GIF passes: the stills get images, the GIF a <video>."""
    root = camera_blog(tmp_path)
    conf = root / "pelicanconf.py"
    conf.write_text(
        conf.read_text().replace(
            '"widths": [320, 640], "formats": ["webp", "auto"]',
            '"widths": [320], "formats": ["webm", "webp", "auto"]',
        )
    )
    done, out = pelican_command(root, "--fatal", "warnings")
    assert done.returncode == 0 and "video-needs-animation" not in out, out
    html = (root / "output/camera.html").read_text()
    pictures = {attributes(TAG.findall(p)[-1])["alt"]: p for p in PICTURE.findall(html)}
    for still in ("IMG_0001.JPG", "still.gif"):
        assert '"image/webp"' in pictures[still] and "video" not in pictures[still]
    assert "anim.gif" not in pictures
    (video,) = re.findall(r"<video\b.*?</video>", html, re.S)
    assert 'type="video/webm;' in video and "/imgpipe/images/anim-320-poster." in video
    names = [p.name for p in (root / "output/imgpipe/images").iterdir()]
    assert [n for n in names if n.endswith(".webm")] == [
        n for n in names if n.startswith("anim-320-webm.")
    ]


def small(root: Path) -> Path:
    """The site with its images at 160 px wide: the default rules' twelve renditions of each
    cost little."""
    import pyvips

    for path in (root / "content").rglob("*.*"):
        if path.suffix in (".jpg", ".png"):
            pyvips.Image.thumbnail(str(path), 160).write_to_file(str(path))
    return root


def without_setting(root: Path) -> Path:
    conf = root / "pelicanconf.py"
    conf.write_text(re.sub(r"(?m)^IMGPIPE = .*$", "", conf.read_text()))
    return root


def ours(caplog, level=logging.INFO) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pelican.plugins.imgpipe" and r.levelno == level
    ]


def test_without_the_setting_the_default_rules_run_and_say_so(tmp_path, monkeypatch, caplog):
    """Issue 12: listed without IMGPIPE, the plugin did nothing and said nothing."""
    root = without_setting(small(make(tmp_path / "blog")))
    with caplog.at_level(logging.INFO):
        run = pelican_build(root, monkeypatch)
    assert run is not None and run.site.summary.failed == 0
    assert ours(caplog)[0] == (
        "imgpipe: IMGPIPE is not set: every image under PATH "
        "(**/*.{jpg,jpeg,jpe,png,webp,gif,tif,tiff,avif,heic,heif}) gets widths 480, 800, 1200, "
        "1600 and formats avif, webp, auto; set IMGPIPE to choose, or IMGPIPE = False to turn "
        "the plugin off"
    )
    html = (root / "output/first.html").read_text()
    assert len(PICTURE.findall(html)) == 3 and "/imgpipe/images/photo-480-avif." in html


def test_without_the_setting_the_projects_imgpipe_toml_is_used(tmp_path, monkeypatch, caplog):
    root = without_setting(small(make(tmp_path / "blog")))
    (root / "imgpipe.toml").write_text(
        '[[rules]]\ninclude = ["**/*.{jpg,png}"]\nwidths = [100]\nformats = ["webp"]\n'
    )
    with caplog.at_level(logging.INFO):
        run = pelican_build(root, monkeypatch)
    assert ours(caplog)[0] == (
        f"imgpipe: IMGPIPE is not set: using the rules of {root / 'imgpipe.toml'}; "
        "IMGPIPE = False turns the plugin off"
    )
    assert run.site.summary.built == 3
    assert "/imgpipe/images/photo-100-webp." in (root / "output/first.html").read_text()


def test_imgpipe_false_turns_the_plugin_off(tmp_path, monkeypatch):
    root = make(tmp_path / "blog")
    conf = root / "pelicanconf.py"
    conf.write_text(conf.read_text().replace("THEME_TEMPLATES_OVERRIDES", "_NO_OVERRIDES"))
    assert pelican_build(root, monkeypatch, IMGPIPE=False) is None
    assert "<picture>" not in (root / "output/first.html").read_text()
    assert not (root / "output/imgpipe").exists() and not (root / "cache/imgpipe").exists()


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            ["widths"],
            "imgpipe: bad-type: \"['widths']\" at IMGPIPE: expected a dict of imgpipe options, "
            'e.g. {"widths": [480, 960]}',
        ),
        (
            {"widths": [0]},
            "imgpipe: out-of-range: '0' at IMGPIPE.widths[0]: expected an integer from 1 to 10000",
        ),
        ({"formats": ["jpg2"]}, "did you mean 'jpeg'?"),
        ({"cache_dir": "output/c"}, "must be outside OUTPUT_PATH"),
        ({"config_file": "nope.toml"}, "config file .*nope.toml does not exist"),
    ],
)
def test_a_bad_setting_is_one_error_line_and_the_site_still_builds(
    tmp_path, monkeypatch, caplog, setting, message
):
    """Issue 12: a typo in IMGPIPE ended in a 50-line traceback. Now it is one line, and the
    site is built without the plugin, as Pelican does with a plugin it cannot load; the
    theme's `picture` filter (templates/article.html) shows the original file."""
    root = make(tmp_path / "blog")
    with caplog.at_level(logging.INFO):
        assert pelican_build(root, monkeypatch, IMGPIPE=setting) is None
    errors = ours(caplog, logging.ERROR)
    assert len(errors) == 1 and errors[0].startswith("imgpipe: "), errors
    assert errors[0] == message or re.search(message, errors[0]), errors[0]
    html = (root / "output/first.html").read_text()
    assert "<picture>" not in html
    assert '<img src="/images/wide.png" alt="Theme banner" class="theme-banner">' in html


def test_a_bad_setting_on_the_command_line_is_one_line_without_traceback(tmp_path):
    root = make(tmp_path / "blog")
    conf = root / "pelicanconf.py"
    conf.write_text(
        conf.read_text()
        .replace("THEME_TEMPLATES_OVERRIDES", "_NO_OVERRIDES")
        .replace('"widths": [320, 640]', '"widths": [320, 0]')
    )
    done, out = pelican_command(root)
    assert done.returncode == 0 and "Traceback" not in out, out
    lines = [line for line in out.splitlines() if "imgpipe:" in line]
    assert len(lines) == 1 and "out-of-range: '0' at IMGPIPE.widths[1]" in lines[0], out


def test_unknown_setting_key_warns_with_a_suggestion(tmp_path, monkeypatch, caplog):
    root = make(tmp_path / "blog")
    with caplog.at_level(logging.WARNING):
        pelican_build(root, monkeypatch, IMGPIPE={"width": [320], "formats": ["webp"]})
    ours = [r.getMessage() for r in caplog.records if r.name == "pelican.plugins.imgpipe"]
    assert ours[0] == (
        "imgpipe: unknown-key: 'width' at IMGPIPE.width: expected one of "
        "config_file, include, exclude, widths, formats, options, sizes, art, "
        "source, jobs, cache_dir, output_dir; did you mean 'widths'?"
    )


def test_pelican_plugin_without_module_globals(site, tmp_path, monkeypatch):
    """A run's state lives in that run's settings, not in the module: two sites built in one
    process each keep their own, and the module holds neither."""
    other = make(tmp_path / "other")
    first = read_settings(str(site / "pelicanconf.py"))
    monkeypatch.chdir(site)
    Pelican(first).run()
    second_run = pelican_build(other, monkeypatch)
    assert plugin.run_of(first).site.config.source != second_run.site.config.source
    assert not [name for name, value in vars(plugin).items() if isinstance(value, plugin._Run)]
