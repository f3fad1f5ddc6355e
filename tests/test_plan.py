"""Planning: cache keys, output names, label clashes. No pixels, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgpipe.config import from_dict
from imgpipe.errors import ConfigError
from imgpipe.plan import cache_key, engine_fingerprint, make, output_name
from imgpipe.sources import discover

FP = engine_fingerprint("1", {"libvips": "8.18.7"})


def plan_for(rule: dict, tmp_path: Path, fingerprint: str = FP, sha: str = "ab" * 32):
    src = tmp_path / "images"
    (src / "blog").mkdir(parents=True, exist_ok=True)
    (src / "blog/cat.jpg").write_bytes(b"x")
    config = from_dict({"source": "images", "output": "out", "rules": [rule]}, tmp_path)
    return make(config, discover(config), lambda f: sha, fingerprint)


def keys(plan) -> dict[str, str]:
    return {r.label: r.key for r in plan.sources[0].renditions}


FAMILY = {
    "include": ["blog/*.jpg"],
    "widths": [480, 800],
    "formats": ["webp", "jpeg"],
    "sizes": "100vw",
    "options": "quality=high",
}


def test_sizes_attribute_does_not_change_cache_keys(tmp_path):
    before = keys(plan_for(FAMILY, tmp_path))
    after = keys(plan_for({**FAMILY, "sizes": "(min-width: 50rem) 50rem, 100vw"}, tmp_path))
    assert before == after


def test_timeout_and_labels_do_not_change_cache_keys(tmp_path):
    a = keys(plan_for({"include": ["**"], "renditions": {"a": "800"}}, tmp_path))
    b = keys(plan_for({"include": ["**"], "renditions": {"b": "800,timeout=5"}}, tmp_path))
    assert a["a"] == b["b"]


@pytest.mark.parametrize(
    "change",
    [
        {"options": "quality=low"},
        {"options": "quality=high,crop"},  # crop without height: a warning, same as scale-down
    ],
)
def test_option_change_changes_cache_keys(tmp_path, change):
    before = keys(plan_for(FAMILY, tmp_path))
    after = keys(plan_for({**FAMILY, **change}, tmp_path))
    if change["options"].endswith("crop"):
        assert before == after
    else:
        assert not set(before.values()) & set(after.values())


def test_source_bytes_and_engine_versions_change_cache_keys(tmp_path):
    base = keys(plan_for(FAMILY, tmp_path))
    other_source = keys(plan_for(FAMILY, tmp_path, sha="cd" * 32))
    upgraded = keys(plan_for(FAMILY, tmp_path, engine_fingerprint("1", {"libvips": "8.19.0"})))
    assert not set(base.values()) & set(other_source.values())
    assert not set(base.values()) & set(upgraded.values())


def test_cache_key_is_the_documented_hash():
    assert cache_key("s", "800", FP) == cache_key("s", "800", FP)
    assert len(cache_key("s", "800", FP)) == 64 and cache_key("s", "800", FP) != cache_key(
        "s", "801", FP
    )


def test_output_names_carry_label_short_key_and_extension():
    key = "1a2b3c4d" + "0" * 56
    assert output_name("blog/cat.jpg", "800", key, "webp") == "blog/cat-800.1a2b3c4d.webp"
    assert output_name("cat.png", "thumb", key, "jpeg") == "cat-thumb.1a2b3c4d.jpg"
    assert output_name("a/b.c/cat.tar.png", "x", key, "h264") == "a/b.c/cat.tar-x.1a2b3c4d.mp4"


def test_plan_knows_formats_densities_and_groups_before_decoding(tmp_path):
    rule = {
        "include": ["**"],
        "renditions": {"thumb": "160x100,crop,2x"},
        **{k: v for k, v in FAMILY.items() if k != "include"},
    }
    sp = plan_for(rule, tmp_path).sources[0]
    thumb, first = sp.renditions[0], sp.renditions[1]
    assert (thumb.label, thumb.options, thumb.density, thumb.format) == (
        "thumb",
        "160x100,crop,2x",
        2.0,
        "auto",
    )
    assert (first.label, first.group, first.width, first.format) == (
        "480-webp",
        "default",
        480,
        "webp",
    )
    assert [s.name for s in sp.srcsets] == ["default"]


def test_labels_clashing_across_rules_for_one_source_are_a_config_error(tmp_path):
    src = tmp_path / "images/blog"
    src.mkdir(parents=True)
    (src / "cat.jpg").write_bytes(b"x")
    (tmp_path / "images/dog.jpg").write_bytes(b"x")
    config = from_dict(
        {
            "source": "images",
            "output": "out",
            "rules": [
                {"include": ["**/*.jpg"], "renditions": {"thumb": "100"}},
                {"include": ["blog/*.jpg"], "renditions": {"thumb": "200"}},
            ],
        },
        tmp_path,
    )
    with pytest.raises(ConfigError) as info:
        make(config, discover(config), lambda f: "", FP)
    assert str(info.value) == (
        "label-clash: blog/cat.jpg: label 'thumb' is made by both "
        "rules[0] and rules[1]; labels must be unique per source"
    )


def test_discover_skips_hidden_and_unmatched_files(tmp_path):
    src = tmp_path / "images"
    (src / ".git").mkdir(parents=True)
    (src / ".git/a.jpg").write_bytes(b"x")
    (src / ".b.jpg").write_bytes(b"x")
    (src / "c.jpg").write_bytes(b"x")
    (src / "d.txt").write_bytes(b"x")
    config = from_dict(
        {
            "source": "images",
            "output": "out",
            "rules": [{"include": ["**"], "exclude": ["*.txt"], "renditions": {"t": "9"}}],
        },
        tmp_path,
    )
    assert [f.relpath for f in discover(config)] == ["c.jpg"]


def test_missing_source_dir_is_a_config_error(tmp_path):
    config = from_dict(
        {
            "source": "nope",
            "output": "out",
            "rules": [{"include": ["**"], "renditions": {"t": "9"}}],
        },
        tmp_path,
    )
    with pytest.raises(ConfigError, match="source directory .*nope does not exist"):
        discover(config)


@pytest.mark.parametrize(
    "formats, still, animated",
    [
        # Videos (and their posters) are for animations; AVIF and JPEG, which hold one frame,
        # for stills when the family has a format that moves.
        (
            ["webm", "avif", "webp", "auto"],
            ["480-avif", "480-webp", "480-auto"],
            ["480-webm", "480-webp", "480-auto", "480-poster"],
        ),
        (["h264", "jpeg"], ["480-jpeg"], ["480-h264", "480-poster"]),
        # Nothing that moves: an animation gets stills rather than nothing.
        (["avif", "jpeg"], ["480-avif", "480-jpeg"], ["480-avif", "480-jpeg"]),
    ],
)
def test_a_family_fits_still_and_animated_sources(tmp_path, formats, still, animated):
    rule = {"include": ["blog/*.jpg"], "widths": [480], "formats": formats}
    (sp,) = plan_for(rule, tmp_path).sources
    assert [r.label for r in sp.fitting(animated=False).renditions] == still
    assert [r.label for r in sp.fitting(animated=True).renditions] == animated
    # A key both kinds need (a poster is the JPEG of the same width) is rendered for both.
    key = {r.label: r.key for r in sp.renditions}.__getitem__
    assert sp.only_for(animated=True) == set(map(key, animated)) - set(map(key, still))
    assert sp.only_for(animated=False) == set(map(key, still)) - set(map(key, animated))
    if "h264" in formats:
        assert key("480-poster") == key("480-jpeg") and not sp.only_for(animated=False)
