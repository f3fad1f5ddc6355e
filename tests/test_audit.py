"""`imgpipe audit` on real pages in headless Chromium (Debian's `chromium`, via Playwright).

One site of small pages (one per kind that triggers it, one that does not, and a 3-column grid
with a wrong and a right `sizes`) is audited once, with one browser, and each test reads its
pages' findings. The example site and a MkDocs site built with the plugin must audit clean.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pyvips")
pytest.importorskip("mkdocs")
pytest.importorskip("playwright.sync_api")

from browser_support import require_chromium  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from sites import copy_site  # noqa: E402

from imgpipe.audit import KINDS, audit  # noqa: E402
from imgpipe.audit.browser import chromium  # noqa: E402
from imgpipe.audit.sweep import suggest, sweep  # noqa: E402
from imgpipe.cli import main  # noqa: E402

require_chromium()

WIDTHS = (160, 240, 320, 400, 480, 640, 800, 960, 1200, 1600)  # photo-W.png, W x W*5/8
SRCSET = ", ".join(f"photo-{w}.png {w}w" for w in WIDTHS)
# The grid: one column of (100vw - 32px) below 700px, then three columns with 16px gaps in a
# container of at most 1200px (border-box, 16px padding each side).
GRID_CSS = """
  body { margin: 0; }
  .grid { display: grid; gap: 16px; padding: 0 16px; max-width: 1200px; margin: 0 auto;
          box-sizing: border-box; }
  @media (min-width: 700px) { .grid { grid-template-columns: repeat(3, 1fr); } }
  .grid img { width: 100%; height: auto; display: block; }
"""
RIGHT_SIZES = (
    "(min-width: 1200px) 379px, (min-width: 700px) calc((100vw - 64px) / 3), calc(100vw - 32px)"
)


def grid(sizes: str) -> str:
    images = "\n".join(
        f'<img src="photo-1600.png" srcset="{SRCSET}" sizes="{sizes}" width="1600" '
        f'height="1000" alt="{n}">'
        for n in range(6)
    )
    return page(f'<div class="grid">{images}</div>', GRID_CSS)


def page(body: str, css: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style></head><body>{body}</body></html>"
    )


def responsive(sizes: str, attrs: str) -> str:
    return f'<img src="photo-400.png" srcset="{SRCSET}" sizes="{sizes}" {attrs} alt="">'


FAR = '<div style="height: 3000px"></div>'  # pushes what follows below any first viewport
# kind -> (a page that triggers it, a page that does not)
KIND_PAGES = {
    "oversized": (
        '<img src="photo-1600.png" width="1600" height="1000" style="width: 200px; '
        'height: auto" alt="">',
        responsive("200px", 'width="200" height="125"'),
    ),
    "undersized": (
        '<img src="photo-400.png" srcset="photo-240.png 240w, photo-400.png 400w" '
        'sizes="600px" width="600" height="375" alt="">',
        '<img src="photo-400.png" srcset="photo-400.png 400w, photo-1200.png 1200w" '
        'sizes="600px" width="600" height="375" alt="">',
    ),
    "no-dimensions": (
        responsive("320px", 'style="width: 320px"'),
        responsive("320px", 'width="320" height="200"'),
    ),
    "lazy-above-fold": (
        responsive("320px", 'width="320" height="200" loading="lazy"'),
        FAR + responsive("320px", 'width="320" height="200" loading="lazy"'),
    ),
    "unprocessed": (
        '<img src="photo-400.png" width="400" height="250" alt="">',
        # imgpipe's renditions (named by it) and responsive images are processed
        '<img src="thumb-240.1a2b3c4d.png" width="240" height="150" alt="">'
        + responsive("400px", 'width="400" height="250"'),
    ),
    "distorted": (
        responsive("400px", 'width="400" height="400"'),
        responsive("400px", 'width="400" height="250"')
        + responsive("400px", 'width="400" height="400" style="object-fit: cover"'),
    ),
}
# A site built by imgpipe whose rule's `sizes` is wrong for the page's 300px column.
CONFIG = textwrap.dedent("""
    source = "originals"
    output = "site/img"
    base_url = "img/"
    cache_dir = "cache"

    [[rules]]
    include = ["*.png"]
    widths = [300, 600]
    formats = ["png"]
    sizes = "100vw"
""")


def make_site(root: Path) -> Path:
    import pyvips

    site = root / "site"
    site.mkdir(parents=True)
    for w in WIDTHS:
        pyvips.Image.black(w, w * 5 // 8, bands=3).pngsave(str(site / f"photo-{w}.png"))
    pyvips.Image.black(240, 150, bands=3).pngsave(str(site / "thumb-240.1a2b3c4d.png"))
    (site / "grid-wrong.html").write_text(grid("100vw"))
    (site / "grid-right.html").write_text(grid(RIGHT_SIZES))
    for kind, (bad, good) in KIND_PAGES.items():
        (site / f"{kind}-bad.html").write_text(page(bad))
        (site / f"{kind}-good.html").write_text(page(good))
    return site


def build_rule_page(root: Path) -> object:
    """An imgpipe build into the site, and a page using its snippet in a 300px column."""
    import pyvips

    from imgpipe.build import build
    from imgpipe.config import load

    (root / "originals").mkdir()
    pyvips.Image.black(800, 500, bands=3).pngsave(str(root / "originals/pic.png"))
    (root / "imgpipe.toml").write_text(CONFIG)
    config = load(root / "imgpipe.toml")
    assert build(config).ok
    snippet = (root / "site/img/_snippets/pic.png.default.html").read_text()
    (root / "site/rule.html").write_text(
        page(f'<div style="width: 300px">{snippet}</div>', "img { max-width: 100%; height: auto; }")
    )
    return config


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def audited(tmp_path_factory, browser):
    """The test site, audited once: (its folder, findings by page, the report)."""
    root = tmp_path_factory.mktemp("audit")
    site = make_site(root)
    config = build_rule_page(root)
    report = audit(site, config=config, chromium=browser)
    by_page: dict[str, list] = {p: [] for p in report.pages}
    for finding in report.findings:
        by_page[finding.page].append(finding)
    return site, by_page, report


def kinds(findings) -> set[str]:
    return {f.kind for f in findings}


def test_every_page_is_audited_and_snippets_are_not_pages(audited):
    site, by_page, report = audited
    assert len(report.pages) == 2 + 2 * len(KIND_PAGES) + 1
    assert not any("_snippets" in p for p in report.pages)
    assert report.as_dict()["pages"] == len(report.pages)


def test_a_grid_with_100vw_is_flagged_on_every_image_with_a_suggestion(audited):
    _, by_page, _ = audited
    wrong = [f for f in by_page["grid-wrong.html"] if f.kind == "wrong-sizes"]
    assert len(wrong) == 6
    assert all(f.sizes == "100vw" and f.suggested for f in wrong)
    assert len({f.suggested for f in wrong}) == 1  # the same layout, the same answer
    # The breakpoints are the layout's, found to the pixel.
    assert re.fullmatch(
        r"\(min-width: 1200px\) 379px, \(min-width: 700px\) calc\(33\.33vw - 21px\), "
        r"calc\(100vw - 32px\)",
        wrong[0].suggested,
    ), wrong[0].suggested


@pytest.mark.parametrize("width", [375, 900, 1600])
def test_the_suggestion_makes_chromium_pick_the_smallest_covering_candidate(
    audited, browser, width
):
    site, by_page, _ = audited
    suggested = next(f.suggested for f in by_page["grid-wrong.html"] if f.kind == "wrong-sizes")
    fixed = site / f"grid-fixed-{width}.html"
    fixed.write_text(grid(suggested))
    from imgpipe.audit.site import served

    with served(str(site)) as (base, _):
        context = browser.new_context(viewport={"width": width, "height": 800})
        try:
            tab = context.new_page()
            tab.goto(base + fixed.name, wait_until="load")
            shown = tab.evaluate(
                """async () => Promise.all([...document.images].map(async img => {
                  img.scrollIntoView(); await img.decode();
                  return [img.getBoundingClientRect().width, img.currentSrc]; }))"""
            )
        finally:
            context.close()
    for rendered, current in shown:
        smallest = min(w for w in WIDTHS if w >= rendered)
        assert current.endswith(f"/photo-{smallest}.png"), (width, rendered, current)


def test_a_grid_with_the_right_sizes_has_no_wrong_sizes(audited):
    _, by_page, _ = audited
    assert "wrong-sizes" not in kinds(by_page["grid-right.html"])


@pytest.mark.parametrize("kind", sorted(KIND_PAGES))
def test_each_kind_has_a_page_that_triggers_it_and_one_that_does_not(audited, kind):
    _, by_page, _ = audited
    bad = [f for f in by_page[f"{kind}-bad.html"] if f.kind == kind]
    assert len(bad) == 1, by_page[f"{kind}-bad.html"]
    assert bad[0].detail and bad[0].img
    assert kind not in kinds(by_page[f"{kind}-good.html"]), by_page[f"{kind}-good.html"]


def test_a_wrong_sizes_names_the_imgpipe_rule_and_line_it_came_from(audited):
    _, by_page, _ = audited
    (finding,) = [f for f in by_page["rule.html"] if f.kind == "wrong-sizes"]
    line = CONFIG.splitlines().index('sizes = "100vw"') + 1
    assert finding.rule == f"imgpipe.toml:{line} (rules[0].sizes)"
    assert finding.suggested == "300px"


def test_sweep_bisects_to_the_breakpoints_in_few_measurements():
    calls = []

    def measure(v):
        calls.append(v)
        return [v - 32 if v < 600 else (v - 64) / 3 if v < 1200 else 1036 / 3]

    samples = sweep(measure)
    assert len(calls) == len(samples) < 80  # not one per pixel (2,241)
    assert {599, 600, 1199, 1200} <= set(samples)
    assert suggest([(v, x[0]) for v, x in samples.items()]) == (
        "(min-width: 1200px) 345px, (min-width: 600px) calc(33.33vw - 21px), calc(100vw - 32px)"
    )


def test_cli_writes_json_and_html_and_exits_1_unless_allowed(tmp_path, audited):
    """The real command, in its own process (a second Playwright cannot start in this one)."""
    site, _, _ = audited
    only = ["--page", "distorted-bad.html"]
    out = tmp_path / "audit.json"
    done = imgpipe(
        "audit", str(site), *only, "--json", str(out), "--html", str(tmp_path / "a.html")
    )
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads(out.read_text())
    assert data["pages"] == 1
    (finding,) = data["findings"]
    assert {"page", "img", "kind", "sizes", "suggested", "viewport", "detail"} <= set(finding)
    assert finding["kind"] == "distorted" and finding["page"] == "distorted-bad.html"
    assert "data:image/jpeg;base64," in (tmp_path / "a.html").read_text()  # the thumbnail
    assert "distorted" in done.stdout
    allowed = imgpipe("audit", str(site), *only, "--allow", "distorted")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    bad = imgpipe("audit", str(site), "--allow", "distort")
    assert bad.returncode == 2 and "did you mean 'distorted'" in bad.stderr


def imgpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgpipe", *args], capture_output=True, text=True, timeout=600
    )


def test_a_missing_site_is_one_readable_error(tmp_path):
    done = CliRunner().invoke(main, ["audit", str(tmp_path / "nope")])
    assert done.exit_code == 2
    assert "no such folder; expected a built site's folder or an http:// URL" in done.output


@pytest.mark.slow
def test_the_example_site_audits_clean(example_site, browser):
    report = audit(example_site, chromium=browser)
    assert report.pages == ("index.html",)
    assert report.findings == (), [f.as_dict() for f in report.findings]


# What the audit suggested for the MkDocs theme's layout (`mkdocs`, Bootstrap's container
# widths): the site's own `sizes`, set from it.
MKDOCS_CONTENT = (
    "(min-width: 1400px) 956px, (min-width: 1200px) 821px, (min-width: 992px) 686px, "
    "(min-width: 576px) 506px, calc(100vw - 34px)"
)
MKDOCS_BANNER = "(min-width: 992px) 630px, (min-width: 576px) 506px, calc(100vw - 34px)"


def test_a_mkdocs_site_built_with_the_plugin_audits_clean(tmp_path, browser):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    root = copy_site("mkdocs", tmp_path / "src", "docs/img")
    yml = root / "mkdocs.yml"
    yml.write_text(yml.read_text().replace('sizes: "100vw"', f'sizes: "{MKDOCS_CONTENT}"'))
    page_md = root / "docs/sub/page.md"
    page_md.write_text(
        page_md.read_text().replace(
            'width="640"', f'width="640" sizes="{MKDOCS_BANNER}" loading="eager"'
        )
    )
    # Undistorted (issue 12), the pages are short enough for the banners to be in the first
    # viewport: the page and the theme load them eagerly.
    theme = root / "overrides/main.html"
    theme.write_text(
        theme.read_text().replace(
            'class="theme-banner"', 'class="theme-banner", sizes="1280px", loading="eager"'
        )
    )
    build(load_config(str(yml)))
    report = audit(
        root / "site",
        chromium=browser,
        manifests=[root / ".imgpipe-cache/site/imgpipe-manifest.json"],
    )
    assert len(report.pages) == 4
    # Nothing distorted either: the default theme sets no `height: auto` for images, the
    # plugin's markup does (issue 12).
    assert [f.as_dict() for f in report.findings] == []


def test_kinds_table_is_what_the_cli_accepts():
    assert set(KINDS) == {
        "wrong-sizes",
        "oversized",
        "undersized",
        "no-dimensions",
        "lazy-above-fold",
        "unprocessed",
        "distorted",
    }


def test_an_http_site_is_crawled_from_its_links(tmp_path, browser):
    from browser_support import serve, url_of

    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    links = '<a href="a.html">a</a> <a href="sub/">sub</a> <a href="https://example.com/">x</a>'
    (site / "index.html").write_text(page(links))
    (site / "a.html").write_text(page('<a href="index.html#top">home</a>'))
    (site / "sub/index.html").write_text(page('<img src="../p.png" alt="" style="width: 20px">'))
    import pyvips

    pyvips.Image.black(40, 40, bands=3).pngsave(str(site / "p.png"))
    server = serve(site)
    try:
        report = audit(url_of(server), chromium=browser)
    finally:
        server.shutdown()
        server.server_close()
    assert report.pages == ("", "a.html", "sub/")
    assert {(f.page, f.kind) for f in report.findings} == {
        ("sub/", "no-dimensions"),
        ("sub/", "unprocessed"),
    }


def test_a_manifest_given_with_the_config_names_the_rule(audited, tmp_path):
    """As for MkDocs with `config_file:` (its manifest stays out of the site): --manifest."""
    from dataclasses import replace

    from imgpipe.audit.site import Manifests
    from imgpipe.config import load

    site, _, _ = audited
    config = load(site.parent / "imgpipe.toml")
    manifest = json.loads(config.manifest.read_text())
    url = (
        "http://127.0.0.1:1/img/" + manifest["sources"]["pic.png"]["renditions"]["300-png"]["path"]
    )
    elsewhere = replace(config, manifest=tmp_path / "not-here.json")
    assert Manifests("http://127.0.0.1:1/", elsewhere).origin_of(url).rule is None
    given = Manifests("http://127.0.0.1:1/", elsewhere, [config.manifest]).origin_of(url)
    line = CONFIG.splitlines().index('sizes = "100vw"') + 1
    assert given.made_by_imgpipe and given.source_width == 800
    assert given.rule == f"imgpipe.toml:{line} (rules[0].sizes)"
    assert given.widths_rule == f"imgpipe.toml:{line - 2} (rules[0].widths)"
