"""Real Pelican builds of tests/sites/pelican with the imgpipe plugin (the real engine)."""

from __future__ import annotations

import logging
import posixpath
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pelican")
pytest.importorskip("pyvips")

from pelican import Pelican  # noqa: E402
from pelican.settings import read_settings  # noqa: E402
from sites import copy_site  # noqa: E402

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


def test_plugin_does_nothing_without_the_setting(tmp_path, monkeypatch):
    root = make(tmp_path / "blog")
    conf = root / "pelicanconf.py"
    conf.write_text(
        conf.read_text()
        .replace("IMGPIPE =", "_UNUSED =")
        .replace("THEME_TEMPLATES_OVERRIDES", "_NO_OVERRIDES")
    )
    assert pelican_build(root, monkeypatch) is None
    assert "<picture>" not in (root / "output/first.html").read_text()
    assert not (root / "output/imgpipe").exists() and not (root / "cache/imgpipe").exists()


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
