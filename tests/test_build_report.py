"""A build people can look at (issue 12, item 10): the report page (`--report FILE.html` and
the config's `report`), the download figure of the summary, and where snippets take alt text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_build import config, site

from imgpipe import build as b
from imgpipe.cli import main
from imgpipe.errors import ConfigError, size_text
from imgpipe.html import Images, alt_text

REPO = Path(__file__).resolve().parents[1]

# A photo family in three formats, a rendition that warns, and the example's badge, whose
# AVIF and WebP lose to its palette PNG (dropped from its group).
TOML = """
source = "images"
output = "public/img"
base_url = "img/"
cache_dir = ".cache"

[[rules]]
include = ["*.jpg"]
widths = [160, 320]
formats = ["avif", "webp", "jpeg"]
renditions = { lossless = "200,quality=lossless" }

[[rules]]
include = ["*.png"]
name = "badge"
widths = [64, 128]
formats = ["avif", "webp", "png"]
"""

# Every image scrolled into view and decoded: what each shows, and any error.
_LOAD_ALL = """async () => {
  const out = [];
  for (const img of document.querySelectorAll('img')) {
    img.scrollIntoView();
    let error = null;
    try { await img.decode(); } catch (e) { error = String(e); }
    out.push({src: img.getAttribute('src'), naturalWidth: img.naturalWidth, error});
  }
  return out;
}"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict, object]:
    """The site built for real with `--report build.html`, its manifest and CLI result."""
    pytest.importorskip("pyvips")
    from sites import make_images

    root = tmp_path_factory.mktemp("report")
    make_images(root / "images")
    (root / "images/wide.png").unlink()
    shutil.copy(REPO / "example-site/images/graphics/badge.png", root / "images")
    (root / "imgpipe.toml").write_text(TOML)
    result = CliRunner().invoke(
        main, ["build", "-c", str(root / "imgpipe.toml"), "--report", str(root / "build.html")]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((root / "public/img/imgpipe-manifest.json").read_text())
    return root, manifest, result


def test_build_report_html_page_loads_in_chromium_with_thumbnails_and_figures(built):
    from browser_support import chromium, require_chromium, serve, url_of

    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    root, manifest, _ = built
    server = serve(root)
    try:
        with chromium(sync_api) as browser:
            page = browser.new_page()
            bad: list[str] = []
            page.on("response", lambda r: bad.append(r.url) if r.status >= 400 else None)
            page.goto(url_of(server) + "build.html", wait_until="load")
            images = page.evaluate(_LOAD_ALL)
            text = page.inner_text("body")
            # Opened from disk too: every link is relative to the page.
            page.goto((root / "build.html").as_uri(), wait_until="load")
            from_disk = page.evaluate(_LOAD_ALL)
    finally:
        server.shutdown()
        server.server_close()
    sources = manifest["sources"]
    assert bad == []
    assert len(images) == len(from_disk) == len(sources) == 2  # one thumbnail per source
    for image in images + from_disk:
        assert image["error"] is None and image["naturalWidth"] > 0, image
    for rel, entry in sources.items():
        assert rel in text and size_text(entry["bytes"]) in text
        for label, r in entry["renditions"].items():
            assert label in text and size_text(r["bytes"]) in text
        for w in entry["warnings"]:
            assert f"warning[{w['code']}] [{w['label']}]" in text
    dropped = sources["badge.png"]["srcsets"]["badge"]["dropped"]
    assert dropped and all(d["reason"] in text for d in dropped)
    assert "lossless-resized" in text
    assert "Browsers download" in text and "less than the originals'" in text


def test_report_json_by_extension_and_the_summary_says_what_browsers_download(built):
    root, manifest, result = built
    totals = result.stdout.splitlines()[-1]
    original = sum(e["bytes"] for e in manifest["sources"].values())
    assert f"less than the originals' {size_text(original)}" in totals
    again = CliRunner().invoke(
        main, ["build", "-c", str(root / "imgpipe.toml"), "--report", str(root / "r.json")]
    )
    data = json.loads((root / "r.json").read_text())
    assert data["bytes"]["before"] == original
    # The photo's widest AVIF (the first format of its group) and the badge's widest in the
    # first format its group kept.
    photo = manifest["sources"]["photo.jpg"]
    badge = manifest["sources"]["badge.png"]["srcsets"]["badge"]
    first = badge["order"][0]
    by_url = {r["url"]: r["bytes"] for r in manifest["sources"]["badge.png"]["renditions"].values()}
    served = photo["renditions"]["320-avif"]["bytes"] + by_url[badge["formats"][first][-1]["url"]]
    assert data["bytes"]["served"] == served
    assert f"browsers download {size_text(served)}" in again.stdout


def test_served_bytes_are_the_widest_first_format_or_the_widest_rendition(tmp_path, fake_engine):
    # Fake engine: a WebP is 96 bytes, a JPEG 128. blog/*: the 200 px WebP of their group;
    # a.jpg has no group: its widest rendition.
    s = b.build(config(site(tmp_path)), engine=fake_engine)
    assert (s.bytes_served, s.bytes_after) == (96 + 96 + 128, 14 * 128 - 4 * 32)


def test_the_configured_report_is_an_output_of_the_build(tmp_path, fake_engine):
    root = site(tmp_path)
    cfg = config(root, report="public/report.html")
    first = b.build(cfg, engine=fake_engine)
    page = root / "public/report.html"
    assert "blog/cat.jpg" in page.read_text()
    assert first.files_written == 14 + 1 + 2 + 1  # renditions, manifest, snippets, the page
    # A touched source with the same bytes: a real build (all cached), written once; the
    # next such build makes the same page, which is not rewritten.
    (root / "images/a.jpg").touch()
    assert b.build(cfg, engine=fake_engine).files_written == 1
    assert "0 built, 14 cached" in page.read_text()
    (root / "images/a.jpg").touch()
    mtime = page.stat().st_mtime_ns
    assert b.build(cfg, engine=fake_engine).files_written == 0
    assert page.stat().st_mtime_ns == mtime
    # Without the key, it goes as any stale output does.
    assert b.build(config(root), engine=fake_engine).files_removed == 1 and not page.exists()


@pytest.mark.parametrize(
    "value",
    ["images/report.html", ".cache/r.html", "imgpipe.toml", "public/img/imgpipe-manifest.json"],
)
def test_the_report_never_lands_on_sources_cache_or_config(tmp_path, value):
    root = site(tmp_path)
    (root / "imgpipe.toml").write_text("")
    with pytest.raises(ConfigError) as info:
        config(root, report=value)
    problem = info.value.problems[0]
    assert (problem.code, problem.where) == ("overlapping-dirs", "report")
    assert problem.message.endswith("did you mean 'build-report.html'?")


def test_a_configured_json_report_holds_no_figure_that_changes_between_builds(
    tmp_path, fake_engine
):
    root = site(tmp_path)
    cfg = config(root, report="report.json")
    b.build(cfg, engine=fake_engine)
    data = json.loads((root / "report.json").read_text())
    assert data["renditions"] == {"built": 14, "cached": 0, "failed": 0}
    assert not {"seconds", "files", "origins"} & set(data)


@pytest.mark.parametrize(
    "relpath,entry,alt",
    [
        ("blog/lake-at-dawn.jpg", {}, "Lake at dawn"),
        # A camera's name says nothing about the picture (issue 12): no alt, and a warning.
        ("IMG_1234.JPG", {}, ""),
        ("trip/DSC01234.jpg", {}, ""),
        ("PXL_20240101_123456789.MP.jpg", {}, ""),
        ("P1000123.JPG", {}, ""),
        ("IMG_1234.JPG", {"alt": "The lake at dawn"}, "The lake at dawn"),
        ("img-2024-summer-trip.jpg", {}, "Img 2024 summer trip"),
        ("a  b.c.png", {}, "A b c"),
        ("blog/cat.jpg", {"alt": "A cat asleep"}, "A cat asleep"),
        ("blog/rule.png", {"alt": ""}, ""),  # decorative, said so
    ],
)
def test_alt_text_comes_from_the_entry_else_the_file_name(relpath, entry, alt):
    assert alt_text(entry, relpath) == alt


def test_snippets_and_the_template_api_take_the_alt_text_hook(tmp_path, fake_engine):
    root = site(tmp_path)
    b.build(config(root), engine=fake_engine)
    out = root / "public/img"
    assert ' alt="Cat" ' in (out / "_snippets/blog/cat.jpg.default.html").read_text()
    images = Images(out / "imgpipe-manifest.json")
    assert ' alt="Dog" ' in images.picture("blog/dog.jpg")
    assert ' alt="" ' in images.picture("blog/dog.jpg", alt="")
    data = json.loads((out / "imgpipe-manifest.json").read_text())
    data["sources"]["blog/dog.jpg"]["alt"] = "A dog running"
    assert ' alt="A dog running" ' in Images(data).img("blog/dog.jpg")


def test_a_camera_file_name_gives_no_alt_and_a_warning(tmp_path, fake_engine):
    root = site(tmp_path)
    (root / "images/blog/IMG_1234.jpg").write_text("640x480\nI")
    (root / "images/blog/DSC01235.jpg").write_text("640x480\nJ")
    toml = 'source = "images"\noutput = "public/img"\ncache_dir = ".cache"\n'
    toml += '[[rules]]\ninclude = ["**/*.jpg"]\nwidths = [160]\nformats = ["jpeg"]\n'
    toml += '[images."blog/DSC01235.jpg"]\nalt = "A heron fishing"\n'
    (root / "imgpipe.toml").write_text(toml)
    from imgpipe.config import load

    summary = b.build(load(root / "imgpipe.toml"), engine=fake_engine)
    missing = [(w.source, w.code) for w in summary.warnings if w.code == "alt-missing"]
    assert missing == [("blog/IMG_1234.jpg", "alt-missing")]
    (note,) = [w for w in summary.warnings if w.code == "alt-missing"]
    assert '[images."blog/IMG_1234.jpg"]' in note.message and "Markdown" in note.message
    snippets = root / "public/img/_snippets/blog"
    assert ' alt="" ' in (snippets / "IMG_1234.jpg.default.html").read_text()
    assert ' alt="A heron fishing" ' in (snippets / "DSC01235.jpg.default.html").read_text()
    assert ' alt="Cat" ' in (snippets / "cat.jpg.default.html").read_text()
