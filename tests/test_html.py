"""Snippets from manifest data alone."""

from __future__ import annotations

import pytest

from imgpipe.html import Renderer, snippet_path

GROUP = {
    "name": "default",
    "sizes": "50vw",
    "fallback": "jpeg",
    "order": ["avif", "webp", "jpeg"],
    "src": "/i/c-800.jpg",
    "width": 800,
    "height": 600,
    "formats": {
        "avif": [{"url": "/i/c-480.avif", "width": 480}, {"url": "/i/c-800.avif", "width": 800}],
        "webp": [{"url": "/i/c-480.webp", "width": 480}],
        "jpeg": [{"url": "/i/c-480.jpg", "width": 480}, {"url": "/i/c-800.jpg", "width": 800}],
    },
}


def test_picture_has_modern_sources_first_then_a_sized_lazy_img():
    html = Renderer().picture({"srcsets": {"default": GROUP}}, alt='A "cat" & <dog>')
    assert html == (
        "<picture>\n"
        '  <source type="image/avif" srcset="/i/c-480.avif 480w, /i/c-800.avif 800w" '
        'sizes="50vw">\n'
        '  <source type="image/webp" srcset="/i/c-480.webp 480w" sizes="50vw">\n'
        '  <img src="/i/c-800.jpg" srcset="/i/c-480.jpg 480w, /i/c-800.jpg 800w" sizes="50vw" '
        'width="800" height="600" alt="A &#34;cat&#34; &amp; &lt;dog&gt;" loading="lazy" '
        'decoding="async" style="height:auto">\n'
        "</picture>\n"
    )


def test_one_format_is_a_lone_img_and_attrs_and_sizes_can_be_given():
    group = {**GROUP, "order": ["jpeg"], "formats": {"jpeg": GROUP["formats"]["jpeg"]}}
    html = Renderer().picture({"srcsets": {"default": group}}, sizes="100vw", **{"class": "hero"})
    assert html.startswith('<img src="/i/c-800.jpg"') and 'sizes="100vw"' in html
    assert html.endswith(' decoding="async" class="hero" style="height:auto">\n')
    assert "<picture>" not in html


@pytest.mark.parametrize(
    "attrs, style",
    [
        ({}, "height:auto"),
        ({"style": "border:0"}, "height:auto;border:0"),  # the author's comes last: it wins
        ({"style": "height:200px"}, "height:auto;height:200px"),
        ({"style": True}, "height:auto"),
        ({"style": False}, None),  # a theme whose CSS sets the height itself
        ({"style": None}, None),
        ({"placeholder": False}, "height:auto"),
    ],
)
def test_every_img_and_video_keeps_its_ratio_unless_the_author_says_otherwise(attrs, style):
    """Issue 12: on a theme with only `max-width: 100%` the height attribute distorted images."""
    video = {
        **GROUP,
        "video": {
            "sources": [{"url": "/i/c.webm", "type": "video/webm"}],
            "width": 800,
            "height": 600,
            "poster": "/i/c.jpg",
            "loop": True,
        },
    }
    renderer = Renderer()
    for html in (
        renderer.picture({"srcsets": {"default": GROUP}}, **attrs),
        renderer.img({"srcsets": {"default": GROUP}}, **attrs),
        renderer.picture({"srcsets": {"default": video}}, **attrs),
    ):
        element = html[html.index("<img" if "<video" not in html else "<video") :]
        element = element[: element.index(">")]
        found = element.split(' style="')[1].split('"')[0] if ' style="' in element else None
        assert found == style, html


def test_unknown_group_names_the_known_ones():
    with pytest.raises(KeyError, match="no srcset group 'hero' \\(groups: default\\)"):
        Renderer().picture({"srcsets": {"default": GROUP}}, "hero")


def test_user_templates_win(tmp_path):
    (tmp_path / "picture.html").write_text("{{ group.src }}|{{ alt }}")
    assert Renderer(tmp_path).picture({"srcsets": {"default": GROUP}}, alt="x") == (
        "/i/c-800.jpg|x\n"
    )


def test_snippet_path_keeps_the_source_extension():
    assert snippet_path("blog/cat.jpg", "default") == "blog/cat.jpg.default.html"
