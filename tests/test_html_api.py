"""The template API (`imgpipe.html.Images`, `install`) and the `<img>` rewriter, from a
hand-written manifest: no engine, no build."""

from __future__ import annotations

import json

import jinja2
import pytest

from imgpipe.html import Images, Renderer, UnknownImage, install
from imgpipe.integrations.rewrite import attributes, call_arguments, rewrite_images


def _group(name: str, stem: str, sizes: str, formats: dict[str, list[int]], height: int):
    fallback = next(f for f in formats if f not in ("avif", "webp"))
    largest = max(formats[fallback])
    return {
        "name": name,
        "sizes": sizes,
        "fallback": fallback,
        "order": [*(f for f in formats if f != fallback), fallback],
        "src": f"/img/{stem}-{largest}.{fallback}",
        "width": largest,
        "height": height,
        "formats": {
            f: [{"url": f"/img/{stem}-{w}.{f}", "width": w} for w in ws]
            for f, ws in formats.items()
        },
    }


MANIFEST = {
    "base_url": "/img/",
    "version": 1,
    "sources": {
        "blog/cat.jpg": {
            "width": 1600,
            "height": 1000,
            "format": "jpeg",
            "bytes": 1,
            "sha256": "",
            "warnings": [],
            "renditions": {},
            "srcsets": {
                "default": _group(
                    "default",
                    "blog/cat",
                    "50vw",
                    {"avif": [400, 800], "webp": [400, 800], "jpeg": [400, 800]},
                    500,
                ),
                "hero": _group("hero", "blog/cat-hero", "100vw", {"jpeg": [1600]}, 1000),
            },
        },
        "logo.png": {
            "width": 200,
            "height": 100,
            "format": "png",
            "bytes": 1,
            "sha256": "",
            "warnings": [],
            "renditions": {},
            "srcsets": {"icons": _group("icons", "logo", "10vw", {"png": [100, 200]}, 100)},
        },
        "gallery/raw.jpg": {
            "width": 10,
            "height": 10,
            "format": "jpeg",
            "bytes": 1,
            "sha256": "",
            "warnings": [],
            "renditions": {},
            "srcsets": {},
        },
    },
}

CAT_PICTURE = (
    "<picture>\n"
    '  <source type="image/avif" srcset="/img/blog/cat-400.avif 400w, /img/blog/cat-800.avif 800w"'
    ' sizes="50vw">\n'
    '  <source type="image/webp" srcset="/img/blog/cat-400.webp 400w, /img/blog/cat-800.webp 800w"'
    ' sizes="50vw">\n'
    '  <img src="/img/blog/cat-800.jpeg" srcset="/img/blog/cat-400.jpeg 400w,'
    ' /img/blog/cat-800.jpeg 800w" sizes="50vw" width="800" height="500" alt="A cat"'
    ' loading="lazy" decoding="async" style="height:auto">\n'
    "</picture>"
)


@pytest.fixture
def images() -> Images:
    return Images(MANIFEST)


def test_picture_has_modern_sources_then_a_sized_lazy_img(images):
    assert images.picture("blog/cat.jpg", alt="A cat") == CAT_PICTURE


def test_img_is_a_lone_img_in_the_fallback_format(images):
    assert images.img("blog/cat.jpg", alt="A cat") == (
        '<img src="/img/blog/cat-800.jpeg" srcset="/img/blog/cat-400.jpeg 400w,'
        ' /img/blog/cat-800.jpeg 800w" sizes="50vw" width="800" height="500" alt="A cat"'
        ' loading="lazy" decoding="async" style="height:auto">'
    )


@pytest.mark.parametrize(
    "src", ["blog/cat.jpg", "./blog/cat.jpg", "/blog/cat.jpg", "blog//cat.jpg", " blog/cat.jpg"]
)
def test_source_paths_are_normalised(images, src):
    assert images.picture(src, alt="A cat") == CAT_PICTURE


def test_group_defaults_to_default_or_the_only_one_and_can_be_chosen(images):
    assert 'srcset="/img/logo-100.png 100w, /img/logo-200.png 200w" sizes="10vw"' in images.img(
        "logo.png"
    )
    hero = images.picture("blog/cat.jpg", group="hero", sizes="80vw")
    assert "<source" not in hero and 'sizes="80vw"' in hero and 'width="1600"' in hero


@pytest.mark.parametrize(
    "src, message",
    [
        (
            "blog/kat.jpg",
            "unknown-image: 'blog/kat.jpg' is not a source in the manifest; "
            "did you mean 'blog/cat.jpg'?",
        ),
        (
            "photos/2024/logo.png",
            "unknown-image: 'photos/2024/logo.png' is not a source in the "
            "manifest; did you mean 'logo.png'?",
        ),
        (
            "zzzzzzzzzzzzzzzz.gif",
            "unknown-image: 'zzzzzzzzzzzzzzzz.gif' is not a source in the manifest",
        ),
    ],
)
def test_unknown_source_names_the_path_and_the_closest_known_one(images, src, message):
    with pytest.raises(UnknownImage) as caught:
        images.picture(src)
    assert str(caught.value) == message


def test_unknown_source_in_an_empty_manifest_says_so(tmp_path):
    path = tmp_path / "imgpipe-manifest.json"
    path.write_text(json.dumps({"base_url": "/", "version": 1, "sources": {}}))
    with pytest.raises(UnknownImage) as caught:
        Images(path).img("a.jpg")
    assert str(caught.value) == (
        f"unknown-image: 'a.jpg' is not a source in {path}; it has no sources (did the build run?)"
    )


@pytest.mark.parametrize(
    "src, group, message",
    [
        (
            "blog/cat.jpg",
            "thumbs",
            "unknown-group: 'blog/cat.jpg' has no srcset group 'thumbs'; its groups: default, hero",
        ),
        (
            "gallery/raw.jpg",
            None,
            "unknown-group: 'gallery/raw.jpg' has no srcset group 'default'; "
            "it has none: give a rule that matches it `widths` (a responsive "
            "family)",
        ),
    ],
)
def test_unknown_group_lists_the_groups(images, src, group, message):
    with pytest.raises(UnknownImage) as caught:
        images.picture(src, group=group)
    assert str(caught.value) == message


def test_attributes_override_defaults_in_place_and_the_rest_follow(images):
    html = images.img(
        "blog/cat.jpg",
        alt='Say "hi" & <bye>',
        loading="eager",
        title="T",
        hidden=True,
        id=None,
        **{"data-x": "1", "class": "wide"},
    )
    assert html.endswith(
        'width="800" height="500" alt="Say &#34;hi&#34; &amp; &lt;bye&gt;" loading="eager"'
        ' decoding="async" title="T" hidden data-x="1" class="wide" style="height:auto">'
    )
    assert " id" not in html


def test_an_author_width_sets_height_in_proportion_and_a_fixed_sizes(images):
    html = images.picture("blog/cat.jpg", width="400")
    assert 'width="400" height="250"' in html
    assert html.count('sizes="(max-width: 400px) 100vw, 400px"') == 3
    assert 'width="320" height="200"' in images.img("blog/cat.jpg", height=200)
    assert 'width="50%" height="500"' in images.img("blog/cat.jpg", width="50%")


def test_rebase_moves_every_url_and_leaves_the_original_alone(images):
    moved = images.rebase("../../_img/").picture("blog/cat.jpg", alt="A cat")
    assert moved == CAT_PICTURE.replace("/img/", "../../_img/")
    assert images.picture("blog/cat.jpg", alt="A cat") == CAT_PICTURE


@pytest.mark.parametrize("autoescape", [True, False])
def test_install_gives_globals_and_filters_unescaped(autoescape):
    env = jinja2.Environment(autoescape=autoescape)
    install(env, MANIFEST)
    out = env.from_string(
        '{{ picture("blog/cat.jpg", alt="A cat") }}|{{ "blog/cat.jpg" | picture(alt="A cat") }}'
        '|{{ img("logo.png") }}|{{ "logo.png" | img }}|{{ images.entry("logo.png").width }}'
    ).render()
    first, second, third, fourth, width = out.split("|")
    assert first == second == CAT_PICTURE
    assert third == fourth and third.startswith('<img src="/img/logo-200.png"')
    assert width == "200"


def test_install_with_a_base_url_per_page_context(tmp_path):
    path = tmp_path / "imgpipe-manifest.json"
    path.write_text(json.dumps(MANIFEST))
    env = jinja2.Environment()
    install(env, path, base_url=lambda ctx: f"{ctx['root']}/img/")
    template = env.from_string('{{ "logo.png" | img }}')
    assert 'src="../img/logo-200.png"' in template.render(root="..")
    assert 'src="https://cdn.example/img/logo-200.png"' in template.render(
        root="https://cdn.example"
    )


def test_templates_can_be_overridden_and_img_html_serves_both(tmp_path):
    (tmp_path / "img.html").write_text('<img class="mine" src="{{ src }}" alt="{{ alt }}">')
    images = Images(MANIFEST, templates=tmp_path)
    assert images.img("logo.png", alt="L") == '<img class="mine" src="/img/logo-200.png" alt="L">'
    assert '<img class="mine" src="/img/blog/cat-800.jpeg" alt="A cat">' in images.picture(
        "blog/cat.jpg", alt="A cat"
    )
    # Snippets are fingerprinted by both templates, so overriding either re-renders them.
    assert "mine" in Renderer(tmp_path).fingerprint()


# --- the <img> rewriter the plugins share ---

PAGE = """<!doctype html><p class=x>Caf&eacute; <IMG SRC="a.jpg" alt='a > b'/> and
<!-- <img src="commented.jpg"> --><script>let s = '<img src="script.jpg">';</script>
<picture><img src="already.jpg"></picture><a href="#"><img src=b.jpg hidden title="t&amp;t"></a>
<img src="a.jpg" src="second.jpg" alt="dup">  &nbsp;trailing</p>"""


def test_rewrite_replaces_only_img_tags_and_keeps_every_other_byte():
    seen = []

    def replace(attrs):
        seen.append(attrs)
        return f"[{attrs['src']}]"

    out = rewrite_images(PAGE, replace)
    assert out == (
        PAGE.replace("""<IMG SRC="a.jpg" alt='a > b'/>""", "[a.jpg]")
        .replace('<img src=b.jpg hidden title="t&amp;t">', "[b.jpg]")
        .replace('<img src="a.jpg" src="second.jpg" alt="dup">', "[a.jpg]")
    )
    assert seen == [
        {"src": "a.jpg", "alt": "a > b"},
        {"src": "b.jpg", "hidden": None, "title": "t&t"},
        {"src": "a.jpg", "alt": "dup"},
    ]


def test_rewrite_keeping_every_tag_returns_the_same_string():
    assert rewrite_images(PAGE, lambda attrs: None) is PAGE


def test_call_arguments_drop_src_and_srcset_and_make_bare_attributes_true():
    attrs = attributes('<img src="a.jpg" srcset="x 1w" sizes="9vw" alt="A" hidden class="c">')
    assert call_arguments(attrs) == ("A", "9vw", {"hidden": True, "class": "c"})
    # No alt (or an empty one) is None: the configured alt ([images."path"] alt) applies.
    assert call_arguments({"src": "a.jpg"}) == (None, None, {})
    assert call_arguments({"src": "a.jpg", "alt": ""}) == (None, None, {})
