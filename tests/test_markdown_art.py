"""Focal points and art picks written in Markdown (`{ data-focus=... }`, `{ data-art=... }`),
through real MkDocs and Pelican builds with the real engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("pelican")
pytest.importorskip("pyvips")

from art_support import FOCUS, draw_photo, marker_pixels  # noqa: E402

from imgpipe.integrations.markdown import focus_links  # noqa: E402

# A <picture>, or a lone <img> (one format and no art direction needs no <picture>).
IMAGE = re.compile(r"<picture>.*?</picture>|<img\b[^>]*>", re.S)
# A square crop family by default (what the focal point steers), and a named family whose
# art direction variant a page can pick.
TOML = """
[[rules]]
include = ["**/*.png"]
widths = [200]
formats = ["png"]
options = "aspect=1:1"

[[rules]]
include = ["**/*.png"]
name = "hero"
widths = [400]
formats = ["png"]

[[rules.art]]
media = "(max-width: 600px)"
aspect = "1:1"
widths = [150]
"""


@pytest.mark.parametrize(
    "text,found",
    [
        ('![A cat](cat.jpg){ data-focus="0.3x0.7" }', [("cat.jpg", "0.3x0.7")]),
        ("![A cat](<img/a cat.jpg> 'Title'){: .wide data-focus='0.3x0.7'}", []),
        (
            "![A cat](img/cat.jpg 'Title'){: .wide data-focus='0.3x0.7'}",
            [("img/cat.jpg", "0.3x0.7")],
        ),
        ("![](/x.png){data-focus=0.1x0.9 #id}", [("/x.png", "0.1x0.9")]),
        ('![A cat](cat.jpg) { data-focus="0.3x0.7" }', []),  # not attached to the image
        ('![A cat](cat.jpg){ data-art="hero" }', []),
        ('[![A cat](cat.jpg){ data-focus="0.5x0.5" }](big.jpg)', [("cat.jpg", "0.5x0.5")]),
    ],
)
def test_focus_links(text, found):
    assert list(focus_links(text)) == found


def _outputs(html: str, site: Path, page_dir: Path) -> list[Path]:
    return [
        (page_dir / url).resolve() if not url.startswith("/") else site / url.lstrip("/")
        for url in re.findall(r'src="([^"]+)"', html)
    ]


def test_mkdocs(tmp_path):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (tmp_path / "docs/img").mkdir(parents=True)
    draw_photo(tmp_path / "docs/img/cat.png")
    draw_photo(tmp_path / "docs/img/hero.png")
    (tmp_path / "docs/index.md").write_text(
        "# Cats\n\n"
        f'![A cat](img/cat.png){{ data-focus="{FOCUS}" }}\n\n'
        '![A hero](img/hero.png){ data-art="hero" }\n\n'
        '![Bad](img/hero.png){ data-art="nope" }\n'
    )
    (tmp_path / "imgpipe.toml").write_text('source = "docs"\n' + TOML)
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: art\nmarkdown_extensions: [attr_list]\n"
        "plugins:\n  - imgpipe:\n      config_file: imgpipe.toml\n"
    )
    build(load_config(str(tmp_path / "mkdocs.yml")))
    html = (tmp_path / "site/index.html").read_text()
    cat, hero, bad = IMAGE.findall(html)
    assert "data-focus" not in html and "data-art" not in html
    (cat_file,) = _outputs(cat, tmp_path / "site", tmp_path / "site")
    assert marker_pixels(cat_file) > 60  # the square crop kept the point the page gave
    assert '<source media="(max-width: 600px)"' in hero and "-hero-art1-150-png." in hero
    assert "<source media" not in bad  # an unknown family: the default one, and a warning
    manifest = json.loads((tmp_path / ".imgpipe-cache/site/imgpipe-manifest.json").read_text())
    options = manifest["sources"]["img/cat.png"]["renditions"]["200-png"]["options"]
    assert options == f"200,aspect=1:1,focus={FOCUS},format=png"


def test_pelican(tmp_path, monkeypatch):
    from pelican import Pelican
    from pelican.settings import read_settings

    (tmp_path / "content/images").mkdir(parents=True)
    draw_photo(tmp_path / "content/images/cat.png")
    (tmp_path / "content/cats.md").write_text(
        "Title: Cats\nDate: 2024-01-01\n\n"
        f'![A cat]({{static}}/images/cat.png){{ data-focus="{FOCUS}" }}\n\n'
        '![A hero]({static}/images/cat.png){ data-art="hero" }\n'
    )
    (tmp_path / "imgpipe.toml").write_text(TOML)
    (tmp_path / "pelicanconf.py").write_text(
        'PATH = "content"\nOUTPUT_PATH = "output"\nCACHE_PATH = "cache"\nTIMEZONE = "UTC"\n'
        'STATIC_PATHS = ["images"]\nFEED_ALL_ATOM = None\nCATEGORY_FEED_ATOM = None\n'
        'PLUGINS = ["pelican.plugins.imgpipe"]\n'
        'IMGPIPE = {"config_file": "imgpipe.toml", "jobs": 1}\n'
    )
    monkeypatch.chdir(tmp_path)
    Pelican(read_settings(str(tmp_path / "pelicanconf.py"))).run()
    html = (tmp_path / "output/cats.html").read_text()
    cat, hero = IMAGE.findall(html)
    assert "data-focus" not in html and "data-art" not in html
    (cat_file,) = _outputs(cat, tmp_path / "output", tmp_path / "output")
    assert marker_pixels(cat_file) > 60
    assert '<source media="(max-width: 600px)"' in hero


def test_mkdocs_inline_art_option(tmp_path):
    """Without a config_file, `art:` in mkdocs.yml adds variants to the plugin's family."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    (tmp_path / "docs").mkdir()
    draw_photo(tmp_path / "docs/cat.png")
    (tmp_path / "docs/index.md").write_text("# Cats\n\n![A cat](cat.png)\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: art\nplugins:\n  - imgpipe:\n      widths: [400]\n      formats: [png]\n"
        "      art:\n        - media: '(max-width: 600px)'\n          aspect: '1:1'\n"
        "          widths: [150]\n"
    )
    build(load_config(str(tmp_path / "mkdocs.yml")))
    (picture,) = IMAGE.findall((tmp_path / "site/index.html").read_text())
    assert '<source media="(max-width: 600px)" type="image/png"' in picture
    assert 'width="150" height="150"' in picture
