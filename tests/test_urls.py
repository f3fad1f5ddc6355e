"""URLs are percent-encoded once, where they are made, and `<img` text is rewritten only where
it is a tag. Issue 18, item 6."""

from __future__ import annotations

import json
import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from imgpipe import build as b
from imgpipe.config import from_dict
from imgpipe.integrations.rewrite import rewrite_images

# Names that break an unencoded URL: a space ends a srcset URL, `#` and `?` end the path, `%`
# starts an escape, `,` separates srcset candidates; and non-ASCII.
ODD = ("with space.jpg", "we ird#1.jpg", "what?.jpg", "100%.jpg", "a, b.jpg", "猫.jpg")


def odd_site(root: Path, make) -> object:
    src = root / "images"
    src.mkdir(parents=True)
    for i, name in enumerate(ODD):
        make(src / name, i)
    return from_dict(
        {
            "source": "images",
            "output": "public",
            "base_url": "/img/",
            "cache_dir": ".cache",
            "jobs": 2,
            "rules": [
                {
                    "include": ["*.jpg"],
                    "widths": [120, 240],
                    "formats": ["webp", "jpeg"],
                    "options": "quality=80",
                }
            ],
        },
        root,
    )


class _Srcsets(HTMLParser):
    """Every URL a browser would fetch from <img src/srcset> and <source srcset>, parsed as
    the HTML spec parses srcset (URL up to whitespace; candidates end at a comma)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "source"):
            if attrs.get("src"):
                self.urls.append(attrs["src"])
            for candidate in (attrs.get("srcset") or "").split(", "):
                self.urls.append(candidate.split()[0].rstrip(","))


def fetched_urls(html: str) -> list[str]:
    parser = _Srcsets()
    parser.feed(html)
    return parser.urls


def test_manifest_and_snippet_urls_are_percent_encoded(tmp_path, fake_engine):
    config = odd_site(tmp_path, lambda path, i: path.write_text(f"{400 + i}x300\n{i}"))
    assert b.build(config, engine=fake_engine).ok
    out = tmp_path / "public"
    sources = json.loads((out / "imgpipe-manifest.json").read_text())["sources"]
    assert sorted(sources) == sorted(ODD)
    for name, entry in sources.items():
        for rendition in entry["renditions"].values():
            url, path = rendition["url"], rendition["path"]
            assert path.startswith(name[:-4]) and (out / path).is_file()
            assert url.startswith("/img/") and unquote(url[len("/img/") :]) == path
            assert not set(url) & set(" #?,猫") and "%" not in path.replace("100%", "")
        snippet = (out / f"_snippets/{name}.default.html").read_text()
        urls = fetched_urls(snippet)
        assert len(urls) == 5  # img src, 2 webp and 2 jpeg candidates
        for url in urls:
            assert (out / unquote(urlsplit(url).path).removeprefix("/img/")).is_file(), url


def test_img_text_inside_other_tags_attributes_is_not_rewritten():
    page = (
        '<a title="<img src=title.jpg>" data-x=\'<img src="data.jpg">\'>link</a>\n'
        '<p data-note="a > b">text <img src="real.jpg" alt="<img src=alt.jpg>"></p>\n'
        '<textarea><img src="typed.jpg"></textarea><img src=last.jpg>'
    )
    seen = []

    def replace(attrs):
        seen.append(attrs["src"])
        return f"[{attrs['src']}]"

    out = rewrite_images(page, replace)
    assert seen == ["real.jpg", "last.jpg"]
    assert out == (
        page.replace('<img src="real.jpg" alt="<img src=alt.jpg>">', "[real.jpg]").replace(
            "<img src=last.jpg>", "[last.jpg]"
        )
    )


def test_mkdocs_keeps_a_percent_encoded_image_working(tmp_path):
    """`![](we%20ird%231.jpg)` is a working link in Markdown; the <picture> it becomes must be
    one too: every URL in it, resolved from the page as a browser does, is a file."""
    pytest.importorskip("mkdocs")
    pyvips = pytest.importorskip("pyvips")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, name in enumerate(ODD):
        xyz = pyvips.Image.xyz(400, 300)
        (xyz[0] * (i + 1) % 256).bandjoin([xyz[1] % 256, xyz[0] % 256]).cast("uchar").copy(
            interpretation="srgb"
        ).jpegsave(str(docs / name), Q=90)
    from urllib.parse import quote

    (docs / "index.md").write_text(
        "# Odd names\n\n"
        + "\n\n".join(f"![{i}]({quote(name)})" for i, name in enumerate(ODD))
        + "\n"
    )
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: odd\nplugins:\n  - imgpipe:\n      widths: [160, 320]\n"
        "      formats: [webp, auto]\n      options: quality=80\n      jobs: 2\n"
    )
    build(load_config(str(tmp_path / "mkdocs.yml")))
    html = (tmp_path / "site/index.html").read_text()
    urls = fetched_urls(html[html.index("<picture") :])
    assert html.count("<picture") == len(ODD) and len(urls) >= 5 * len(ODD)
    for url in urls:
        target = posixpath.normpath(unquote(urlsplit(url).path))
        assert (tmp_path / "site" / target).is_file(), url


# (src, page dir, site URL, full_urls) -> (target, root), or None for a link off the site.
LINKS = [
    ("img/a.jpg", "blog/post", "", False, ("blog/post/img/a.jpg", "../../")),
    ("../img/a.jpg", "blog", "", False, ("img/a.jpg", "../")),
    ("a.jpg", "", "https://x.org/", False, ("a.jpg", "")),
    ("/img/a%20b.jpg", "blog", "", False, ("img/a b.jpg", "/")),
    ("/docs/img/a.jpg", "p", "https://x.org/docs/", False, ("img/a.jpg", "/docs/")),
    ("/other/a.jpg", "p", "https://x.org/docs", False, ("other/a.jpg", "/docs/")),
    (
        "https://x.org/docs/img/a.jpg",
        "p",
        "https://x.org/docs",
        True,
        ("img/a.jpg", "https://x.org/docs/"),
    ),
    ("https://x.org/docs/img/a.jpg", "p", "https://x.org/docs", False, None),  # MkDocs
    ("https://elsewhere.org/a.jpg", "p", "https://x.org", True, None),
    ("//cdn.org/a.jpg", "", "", False, None),
    ("data:image/png;base64,xx", "", "", False, None),
    ("#top", "", "", False, None),
]


@pytest.mark.parametrize("src, page_dir, site_url, full_urls, expected", LINKS)
def test_one_resolver_for_the_mkdocs_and_pelican_rewriters(
    src, page_dir, site_url, full_urls, expected
):
    from imgpipe.integrations import site

    link = site.image_link(src, page_dir, site_url, full_urls=full_urls)
    assert (link and (link.target, link.root)) == expected
