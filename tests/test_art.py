"""Per-image data (`[images."path"]` focus and alt) and art direction (`[[rules.art]]`): config,
plan, manifest and markup, with the fake engine (fast). Pixels: tests/test_art_engine.py."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from imgpipe import build as b
from imgpipe.config import from_dict
from imgpipe.errors import ConfigError
from imgpipe.html import Images
from imgpipe.plan import make

FAMILY = {
    "include": ["blog/*.jpg"],
    "widths": [480, 960],
    "formats": ["webp", "jpeg"],
    "sizes": "(min-width: 60rem) 60rem, 100vw",
    "art": [{"media": "(max-width: 600px)", "aspect": "1:1", "widths": [360, 720]}],
}
THUMBS = {"include": ["**/*.jpg"], "renditions": {"thumb": "100x100,crop", "big": "400"}}


def raw(rules=(FAMILY,), **extra) -> dict:
    return {
        "source": "images",
        "output": "public/img",
        "base_url": "/img/",
        "cache_dir": ".cache",
        "jobs": 1,
        "rules": list(rules),
        **extra,
    }


def site(tmp_path: Path) -> Path:
    (tmp_path / "images/blog").mkdir(parents=True)
    (tmp_path / "images/blog/cat.jpg").write_text("1600x900\nC")  # the fake engine's header
    (tmp_path / "images/blog/dog.jpg").write_text("1200x800\nD")
    return tmp_path


# -- config -------------------------------------------------------------------------------------


def test_art_variants_become_family_members():
    config = from_dict(raw(), Path("/site"))
    (rule,) = config.rules
    assert [(a.number, a.media, a.sizes, a.widths) for a in rule.srcset.art] == [
        (1, "(max-width: 600px)", "(min-width: 60rem) 60rem, 100vw", (360, 720))
    ]
    specs = {s.label: (s.recipe.canonical(), s.art) for s in rule.renditions}
    assert specs == {
        "480-webp": ("480,format=webp", None),
        "480-jpeg": ("480,format=jpeg", None),
        "960-webp": ("960,format=webp", None),
        "960-jpeg": ("960,format=jpeg", None),
        "art1-360-webp": ("360,aspect=1:1,format=webp", 1),
        "art1-360-jpeg": ("360,aspect=1:1,format=jpeg", 1),
        "art1-720-webp": ("720,aspect=1:1,format=webp", 1),
        "art1-720-jpeg": ("720,aspect=1:1,format=jpeg", 1),
    }


def test_art_adds_its_options_to_the_familys():
    family = {
        **FAMILY,
        "name": "hero",
        "options": "quality=high",
        "art": [
            {"media": "(max-width: 40em)", "widths": [300], "options": "crop=top", "sizes": "90vw"}
        ],
    }
    (rule,) = from_dict(raw([family]), Path("/site")).rules
    art = [s for s in rule.renditions if s.art == 1]
    assert [s.label for s in art] == ["hero-art1-300-webp", "hero-art1-300-jpeg"]
    # crop=top with one side and no aspect: a warning, as in any option string
    assert art[0].recipe.canonical() == "300,quality=high,format=webp"
    assert rule.srcset.art[0].sizes == "90vw"


@pytest.mark.parametrize(
    "art,code,where,message",
    [
        (
            {"media": "(max-width: 600px)", "aspect": "16x9", "widths": [360]},
            "bad-aspect",
            "rules[0].art[0].aspect",
            "rules[0].art[0].aspect: 'aspect=16x9' at token 1: expected aspect=W:H with whole "
            "numbers (e.g. 16:9, 1:1); did you mean 'aspect=16:9'?",
        ),
        (
            {"aspect": "1:1", "widths": [360]},
            "missing-key",
            "rules[0].art[0]",
            "'media' is required for art direction",
        ),
        (
            {"media": "(max-width: 600px)", "widths": [360], "options": "300"},
            "family-options",
            "rules[0].art[0].options",
            "'300' at rules[0].art[0].options: expected options without a size or format: "
            "`widths` and `formats` set those",
        ),
        (
            {"media": "(max-width: 600px)", "widths": ["x"]},
            "bad-type",
            "rules[0].art[0].widths[0]",
            None,
        ),
    ],
)
def test_bad_art_is_an_error_with_its_key_path(art, code, where, message):
    with pytest.raises(ConfigError) as caught:
        from_dict(raw([{**FAMILY, "art": [art]}]), Path("/site"))
    problem = caught.value.problems[0]
    assert (problem.code, problem.where) == (code, where)
    if message:
        assert problem.message == message


def test_unknown_art_and_image_keys_warn():
    config = from_dict(
        raw(
            [{**FAMILY, "art": [{**FAMILY["art"][0], "aspct": "1:1"}]}],
            images={"blog/cat.jpg": {"focus": "0.3x0.7", "alt": "A cat", "altt": "x"}},
        ),
        Path("/site"),
    )
    assert [(w.code, w.where) for w in config.warnings] == [
        ("unknown-key", 'images."blog/cat.jpg".altt'),
        ("unknown-key", "rules[0].art[0].aspct"),
    ]
    assert "did you mean 'alt'?" in config.warnings[0].message
    image = config.images["blog/cat.jpg"]
    assert (image.focus, image.alt) == ((Fraction(3, 10), Fraction(7, 10)), "A cat")


@pytest.mark.parametrize(
    "images,code,where,message",
    [
        (
            {"cat.jpg": {"focus": "0.3,0.7"}},
            "bad-focus",
            'images."cat.jpg".focus',
            "'0.3,0.7' at images.\"cat.jpg\".focus: expected FXxFY with FX and FY in 0..1; "
            "did you mean '0.5x0.5'?",
        ),
        (
            {"cat.jpg": {"focus": "1.3x0.7"}},
            "bad-focus",
            'images."cat.jpg".focus',
            "'1.3x0.7' at images.\"cat.jpg\".focus: expected focal point FXxFY with both in "
            "0..1 (got 1.3); did you mean '0.5x0.5'?",
        ),
        ({"cat.jpg": {"alt": 3}}, "bad-type", 'images."cat.jpg".alt', None),
        ({"cat.jpg": "0.3x0.7"}, "bad-type", 'images."cat.jpg"', None),
    ],
)
def test_bad_image_data_is_an_error_with_its_key_path(images, code, where, message):
    with pytest.raises(ConfigError) as caught:
        from_dict(raw(images=images), Path("/site"))
    problem = caught.value.problems[0]
    assert (problem.code, problem.where) == (code, where)
    if message:
        assert problem.message == message


# -- plan: the focal point is in the options, so in the cache keys ------------------------------


def _plan(root, images):
    from imgpipe.sources import discover

    config = from_dict(raw([FAMILY, THUMBS], images=images), site(root))
    plan = make(config, discover(config), lambda f: "0" * 64, "engine")
    return {r.label: r for r in plan.sources[0].renditions}


def test_focus_reaches_every_crop_and_only_crops(tmp_path):
    plain = _plan(tmp_path / "a", {})
    focused = _plan(tmp_path / "b", {"blog/cat.jpg": {"focus": "0.3x0.7"}})
    assert focused["thumb"].options == "100x100,crop=0.3x0.7"
    assert focused["art1-360-webp"].options == "360,aspect=1:1,focus=0.3x0.7,format=webp"
    changed = {label for label in plain if plain[label].key != focused[label].key}
    # What does not crop keeps its bytes, so its key: a focal point costs no rebuild there.
    assert changed == {"thumb"} | {label for label in plain if label.startswith("art1-")}


def test_a_crop_that_names_its_own_position_keeps_it(tmp_path):
    rules = [{"include": ["**/*.jpg"], "renditions": {"top": "100x100,crop=top"}}]
    config = from_dict(raw(rules, images={"blog/cat.jpg": {"focus": "0.3x0.7"}}), site(tmp_path))
    from imgpipe.sources import discover

    plan = make(config, discover(config), lambda f: "0" * 64, "engine")
    assert plan.sources[0].renditions[0].options == "100x100,crop=top"


# -- build: manifest, markup, warnings ----------------------------------------------------------


def test_manifest_and_snippet_list_art_variants_before_the_default(tmp_path, fake_engine):
    config = from_dict(raw(images={"blog/cat.jpg": {"alt": "A cat & a wall"}}), site(tmp_path))
    summary = b.build(config, engine=fake_engine)
    assert summary.ok
    out = tmp_path / "public/img"
    manifest = json.loads((out / "imgpipe-manifest.json").read_text())
    cat = manifest["sources"]["blog/cat.jpg"]
    assert cat["alt"] == "A cat & a wall" and "alt" not in manifest["sources"]["blog/dog.jpg"]
    group = cat["srcsets"]["default"]
    (art,) = group["art"]
    assert art["media"] == "(max-width: 600px)"
    assert (art["width"], art["height"]) == (720, 720)  # the square variant's largest
    assert (group["width"], group["height"]) == (960, 540)
    assert [i["width"] for i in art["formats"]["jpeg"]] == [360, 720]

    snippet = (out / "_snippets/blog/cat.jpg.default.html").read_text()
    art_url = art["formats"]["webp"][0]["url"]
    assert snippet.splitlines() == [
        "<picture>",
        f'  <source media="(max-width: 600px)" type="image/webp" srcset="{art_url} 360w, '
        f'{art["formats"]["webp"][1]["url"]} 720w" sizes="(min-width: 60rem) 60rem, 100vw" '
        'width="720" height="720">',
        f'  <source media="(max-width: 600px)" type="image/jpeg" '
        f'srcset="{art["formats"]["jpeg"][0]["url"]} 360w, {art["formats"]["jpeg"][1]["url"]} '
        '720w" sizes="(min-width: 60rem) 60rem, 100vw" width="720" height="720">',
        f'  <source type="image/webp" srcset="{group["formats"]["webp"][0]["url"]} 480w, '
        f'{group["formats"]["webp"][1]["url"]} 960w" sizes="(min-width: 60rem) 60rem, 100vw" '
        'width="960" height="540">',
        f'  <img src="{group["src"]}" srcset="{group["formats"]["jpeg"][0]["url"]} 480w, '
        f'{group["src"]} 960w" sizes="(min-width: 60rem) 60rem, 100vw" width="960" '
        'height="540" alt="A cat &amp; a wall" loading="lazy" decoding="async" '
            'style="height:auto">',
        "</picture>",
    ]
    images = Images(out / "imgpipe-manifest.json", base_url="/x/")
    assert 'alt="A cat &amp; a wall"' in images.picture("blog/cat.jpg")
    assert 'alt="Tabby"' in images.picture("blog/cat.jpg", alt="Tabby")
    assert 'alt="Dog"' in images.img("blog/dog.jpg")  # no configured alt: the file name
    assert 'srcset="/x/blog/cat-art1-360' in images.picture("blog/cat.jpg")  # rebased too


def test_unknown_image_paths_warn_with_the_closest_source(tmp_path, fake_engine):
    config = from_dict(
        raw(images={"blog/cta.jpg": {"alt": "x"}, "cat.jpg": {"alt": "y"}}), site(tmp_path)
    )
    summary = b.build(config, engine=fake_engine)
    unknown = [(w.code, w.message) for w in summary.warnings if w.code == "unknown-image"]
    assert unknown == [
        (
            "unknown-image",
            "'blog/cta.jpg' at images.\"blog/cta.jpg\": expected the path of a source, "
            "relative to `source`; did you mean 'blog/cat.jpg'?",
        ),
        (
            "unknown-image",
            "'cat.jpg' at images.\"cat.jpg\": expected the path of a source, relative to "
            "`source`; did you mean 'blog/cat.jpg'?",
        ),
    ]
    assert summary.ok  # a warning: everything else is built


def test_check_names_unknown_image_paths(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from imgpipe.cli import main

    site(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgpipe.toml").write_text(
        'source = "images"\noutput = "out"\n[[rules]]\ninclude = ["**/*.jpg"]\n'
        "widths = [480]\n"
        '[images."blog/cat.jpg"]\nfocus = "0.3x0.7"\n[images."blog/dgo.jpg"]\nalt = "A dog"\n'
    )
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0
    assert result.stderr == (
        "warning[unknown-image]: 'blog/dgo.jpg' at images.\"blog/dgo.jpg\": expected the path "
        "of a source, relative to `source`; did you mean 'blog/dog.jpg'?\n"
    )


def test_art_options_win_over_the_familys_without_a_warning():
    family = {
        **FAMILY,
        "options": "quality=high",
        "art": [{"media": "(max-width: 600px)", "widths": [300], "options": "quality=low"}],
    }
    config = from_dict(raw([family]), Path("/site"))
    art = [s for s in config.rules[0].renditions if s.art == 1]
    assert art[0].recipe.canonical() == "300,quality=low,format=webp"
    assert config.warnings == ()


def test_markdown_focus_points_join_the_config_with_warnings_for_the_rest(tmp_path):
    from imgpipe.integrations.markdown import with_focus

    root = site(tmp_path)
    config = from_dict(raw(images={"blog/dog.jpg": {"focus": "0.1x0.1"}}), root)
    src = root / "images/blog"
    found = [
        ("a.md", "blog/cat.jpg", src / "cat.jpg", "0.3x0.7"),
        ("b.md", "cat.jpg", src / "cat.jpg", "0.9x0.9"),  # another page disagrees
        ("b.md", "dog.jpg", src / "dog.jpg", "0.9x0.9"),  # the config's own wins, silently
        ("c.md", "x.jpg", root / "x.jpg", "0.5x0.5"),  # outside the source directory
        ("c.md", "y.jpg", None, "0.5x0.5"),  # no such file
        ("d.md", "cat.jpg", src / "cat.jpg", "0.3,0.7"),
    ]
    focused, problems = with_focus(config, found)
    assert focused.images["blog/cat.jpg"].focus == (Fraction(3, 10), Fraction(7, 10))
    assert focused.images["blog/dog.jpg"].focus == (Fraction(1, 10), Fraction(1, 10))
    assert [(p.code, p.message) for p in problems] == [
        ("focus-conflict", "b.md: data-focus: blog/cat.jpg already has another focus"),
        (
            "unknown-image",
            "'x.jpg' at c.md: data-focus: expected an image under the source directory",
        ),
        (
            "unknown-image",
            "'y.jpg' at c.md: data-focus: expected an image under the source directory",
        ),
        (
            "bad-focus",
            "'0.3,0.7' at d.md: data-focus: expected FXxFY with FX and FY in 0..1; "
            "did you mean '0.5x0.5'?",
        ),
    ]
