"""Config validation as a table: bad config -> exact message with its key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from imgpipe.config import from_dict, load
from imgpipe.errors import ConfigError
from imgpipe.globs import compile_globs, escape
from imgpipe.starter import STARTER, starter_text

BASE = {"source": "images", "output": "public/img"}
RULE = {"include": ["**/*.jpg"], "renditions": {"thumb": "160x100,crop"}}


def raw(**changes):
    data = {**BASE, "rules": [RULE], **changes}
    return {k: v for k, v in data.items() if v is not None}


BAD = [
    (raw(source=None), "missing-key", "'source' is required (a directory path)"),
    (raw(jobs="4"), "bad-type", "'4' at jobs: expected an integer from 0 to 1024, not a string"),
    (raw(jobs=-1), "out-of-range", "'-1' at jobs: expected an integer from 0 to 1024"),
    (raw(base_url=5), "bad-type", "'5' at base_url: expected a string, not an integer"),
    (
        raw(rules=[{**RULE, "include": "a", "widths": [480, 800, "big"]}]),
        "bad-type",
        "'big' at rules[0].widths[2]: expected an integer from 1 to 10000, not a string",
    ),
    (
        raw(rules=[RULE, {"include": ["b/*"], "widths": [480, 0]}]),
        "out-of-range",
        "'0' at rules[1].widths[1]: expected an integer from 1 to 10000",
    ),
    (
        raw(rules=[RULE, {"include": ["b/*"], "widths": [480], "formats": ["webp", "jpg2"]}]),
        "bad-choice",
        "'jpg2' at rules[1].formats[1]: expected one of auto, jpeg, png, webp, avif, "
        "gif, webm, h264; did you mean 'jpeg'?",
    ),
    (
        raw(rules=[{"include": ["*"], "renditions": {"t": "160x100,crap"}}]),
        "unknown-token",
        "rules[0].renditions.t: 'crap' at token 2: expected one of: full, W, WxH, xH (1..10000), "
        "a density 1x..3x, scale-down, fit, crop, crop=auto|top|bottom|left|right|FXxFY, pad, "
        "trim, bgcolor=RGB|RRGGBB, quality=low|medium|high|lossless|1..100, "
        "format=auto|jpeg|png|webp|avif|gif|webm|h264, metadata=strip|copyright|keep, "
        "timeout=SECONDS, aspect=W:H, focus=FXxFY; did you mean 'crop'?",
    ),
    (
        raw(rules=[{"include": ["*"], "renditions": {"t": ""}}]),
        "empty-options",
        "rules[0].renditions.t: '': expected at least one token; use 'full' for no resizing; "
        "did you mean 'full'?",
    ),
    (
        raw(rules=[{"include": ["*"], "renditions": {"t": 800}}]),
        "bad-type",
        "'800' at rules[0].renditions.t: expected an option string, not an integer",
    ),
    (
        raw(rules=[{"include": ["*"], "renditions": {"a b": "800"}}]),
        "bad-label",
        "'a b' at rules[0].renditions.a b: expected a label of letters, digits, - and _",
    ),
    (
        raw(rules=[{"include": ["*"], "widths": [400], "options": "800,crop"}]),
        "family-options",
        "'800,crop' at rules[0].options: expected options without a size or format: `widths` and "
        "`formats` set those",
    ),
    (raw(rules=[{"include": ["*"]}]), "empty-rule", "a rule needs `renditions` or `widths`"),
    (
        raw(rules=[{"renditions": {"t": "800"}}]),
        "missing-key",
        "'include' is required (a list of globs)",
    ),
    (
        raw(rules=[{"include": ["{a,b"], "renditions": {"t": "800"}}]),
        "bad-glob",
        "unclosed '{' in glob '{a,b'",
    ),
    (
        raw(rules={"include": ["*"]}),
        "bad-type",
        "\"{'include': ['*']}\" at rules: expected an array of tables ([[rules]]), not a table",
    ),
    (
        raw(presets={"crop": "800"}),
        "bad-preset-name",
        "'crop' at presets.crop: expected a name that is not an option token (letters, digits, "
        "- _, not starting with a digit)",
    ),
    (
        raw(presets={"a": "b", "b": "a"}),
        "preset-cycle",
        "preset 'a' refers to itself via a -> b -> a",
    ),
    (
        raw(presets={"thumb": "160x100,crop=middle"}),
        "bad-crop",
        "presets.thumb: 'crop=middle' at token 2: expected crop=auto|top|bottom|left|right or a "
        "focal point crop=FXxFY (0..1); did you mean 'crop'?",
    ),
    (
        raw(limits={"max_pixels": 0}),
        "out-of-range",
        "'0' at limits.max_pixels: expected an integer of at least 1",
    ),
    (raw(cache_dir="images/.cache"), "overlapping-dirs", None),
    (raw(cache_dir="public"), "overlapping-dirs", None),
    (raw(output="images/out"), "overlapping-dirs", None),
]


@pytest.mark.parametrize(
    "data,code,message", BAD, ids=[f"{i}-{c}" for i, (_, c, _m) in enumerate(BAD)]
)
def test_bad_config_is_an_error_with_its_key_path(data, code, message):
    with pytest.raises(ConfigError) as info:
        from_dict(data, Path("/site"))
    problem = info.value.problems[0]
    assert problem.code == code
    if message is not None:
        assert problem.message == message


def test_overlapping_dirs_message_names_both():
    with pytest.raises(ConfigError) as info:
        from_dict(raw(cache_dir="images/.cache"), Path("/site"))
    assert str(info.value) == (
        "overlapping-dirs: 'images/.cache' at cache_dir: expected a "
        "directory outside source (/site/images) that does not contain "
        "it either; did you mean '.imgpipe-cache'?"
    )


def test_cache_and_output_may_live_in_a_source_directory_every_rule_excludes():
    # Sphinx's layout: `_build` inside the documentation folder.
    ruled = {**RULE, "exclude": ["_build/**"]}
    inside = raw(cache_dir="images/_build/cache", output="images/_build/deep/out")
    config = from_dict({**inside, "rules": [ruled, {**ruled, "include": ["b/*"]}]}, Path("/s"))
    assert config.cache_dir == Path("/s/images/_build/cache")
    assert not config.rules[0].matches("_build/deep/out/photo-1.jpg")
    # One rule that would read it is enough to refuse; so is a narrower exclude.
    for rules in ([ruled, RULE], [{**RULE, "exclude": ["_build/*.jpg"]}]):
        with pytest.raises(ConfigError) as info:
            from_dict({**inside, "rules": rules}, Path("/s"))
        assert [p.where for p in info.value.problems] == ["cache_dir", "output"]


@pytest.mark.parametrize("name", ["_build", "a[b]c", "x{y,z}", "st*r?", "[!x]"])
def test_escaped_glob_matches_the_name_literally(name):
    pattern = compile_globs([escape(name) + "/**"])
    assert pattern.match(f"{name}/photo.jpg") and pattern.match(f"{name}/a/b.jpg")
    assert not pattern.match(f"{name}x/photo.jpg") and not pattern.match("other/photo.jpg")


def test_every_problem_is_listed_not_only_the_first():
    with pytest.raises(ConfigError) as info:
        from_dict(raw(jobs="x", rules=[{"include": ["*"], "widths": [0, "a"]}]), Path("/s"))
    assert [p.where for p in info.value.problems] == [
        "jobs",
        "rules[0].widths[0]",
        "rules[0].widths[1]",
    ]


@pytest.mark.parametrize(
    "data,where,message",
    [
        (
            raw(jbos=2),
            "jbos",
            "'jbos' at jbos: expected one of source, output, base_url, cache_dir, "
            "jobs, manifest, snippets, templates, follow_symlinks, limits, presets, rules, scheduler, "
            "remote_cache, remote_cache_options, images, cache_keep, report; did you mean 'jobs'?",
        ),
        (
            raw(rules=[{**RULE, "exlude": ["x"]}]),
            "rules[0].exlude",
            "'exlude' at rules[0].exlude: expected one of include, exclude, renditions, widths, "
            "formats, options, sizes, name, art, rasterize_svg, metadata; did you mean 'exclude'?",
        ),
        (
            raw(limits={"max_pixel": 5}),
            "limits.max_pixel",
            "'max_pixel' at limits.max_pixel: expected one of max_pixels, max_bytes, max_frames; "
            "did you mean 'max_pixels'?",
        ),
        (
            raw(rules=[{"include": ["*"], "renditions": {"t": "800,format=jpg"}}]),
            "rules[0].renditions.t",
            "rules[0].renditions.t: format=jpg is read as format=jpeg",
        ),
    ],
)
def test_close_enough_is_a_warning(data, where, message):
    config = from_dict(data, Path("/site"))
    (warning,) = config.warnings
    assert (warning.where, warning.message) == (where, message)


def test_clashing_labels_within_a_rule():
    rule = {
        "include": ["*"],
        "renditions": {"800-webp": "800,format=webp"},
        "widths": [800],
        "formats": ["webp"],
    }
    with pytest.raises(ConfigError) as info:
        from_dict(raw(rules=[rule]), Path("/site"))
    assert info.value.problems[0].message == (
        "label '800-webp' of rules[0].widths is also made by rules[0].renditions.800-webp"
    )


def test_presets_expand_inside_option_strings():
    config = from_dict(
        raw(
            presets={"thumb": "160x100,crop=auto", "hd": "thumb,2x"},
            rules=[{"include": ["*"], "renditions": {"t": "hd,quality=high"}}],
        ),
        Path("/site"),
    )
    assert config.rules[0].renditions[0].recipe.canonical() == "160x100,crop=auto,2x,quality=high"


def test_family_labels_and_named_groups():
    rule = {
        "include": ["*"],
        "widths": [480, 800],
        "formats": ["avif", "jpeg"],
        "options": "quality=high",
        "name": "hero",
        "sizes": "50vw",
    }
    config = from_dict(raw(rules=[rule]), Path("/site"))
    specs = config.rules[0].renditions
    assert [s.label for s in specs] == [
        "hero-480-avif",
        "hero-480-jpeg",
        "hero-800-avif",
        "hero-800-jpeg",
    ]
    assert specs[0].recipe.canonical() == "480,quality=high,format=avif"
    assert config.rules[0].srcset.sizes == "50vw" and {s.group for s in specs} == {"hero"}


def test_paths_resolve_against_the_config_dir_and_defaults():
    config = from_dict(raw(), Path("/site"))
    assert (config.source, config.output, config.cache_dir) == (
        Path("/site/images"),
        Path("/site/public/img"),
        Path("/site/.imgpipe-cache"),
    )
    assert config.manifest == Path("/site/public/img/imgpipe-manifest.json")
    assert config.base_url == "/" and config.jobs >= 1


@pytest.mark.parametrize(
    "pattern,yes,no",
    [
        (
            "gallery/**/*.{jpg,png}",
            ["gallery/a.jpg", "gallery/x/y/b.png"],
            ["gallery/a.gif", "galleryx/a.jpg", "a/gallery/b.jpg"],
        ),
        ("**/*.jpg", ["a.jpg", "x/y/a.jpg", "IMG_0001.JPG", "x/a.Jpg"], ["a.jpeg", "a.JPEG"]),
        ("**/*.{JPG,png}", ["a.jpg", "b.PNG", "c.Png"], ["a.gif"]),  # camera files: issue 12
        ("Photos/*.jpeg", ["photos/a.JPEG"], ["photos/x/a.jpeg"]),
        ("[a-c]*.gif", ["B.GIF"], ["d.gif"]),
        ("*.jpg", ["a.jpg"], ["x/a.jpg"]),
        ("photos/**", ["photos/a", "photos/b/c"], ["photosx/a"]),
        ("[!_]*.{jp{e,}g,png}", ["a.jpeg", "a.jpg", "b.png"], ["_a.jpg"]),
    ],
)
def test_glob_table(pattern, yes, no):
    config = from_dict(raw(rules=[{"include": [pattern], "renditions": {"t": "800"}}]), Path("/s"))
    rule = config.rules[0]
    assert [p for p in yes if rule.matches(p)] == yes
    assert [p for p in no if rule.matches(p)] == []


def test_pyproject_fallback_and_dedicated_file_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.imgpipe]\nsource = "src"\noutput = "out"\n'
        '[[tool.imgpipe.rules]]\ninclude = ["*"]\nrenditions = { t = "800" }\n'
    )
    config = load(directory=tmp_path)
    assert config.path == tmp_path / "pyproject.toml" and config.source == tmp_path / "src"
    (tmp_path / "imgpipe.toml").write_text('source = "a"\noutput = "b"\n')
    config = load(directory=tmp_path)
    assert config.source == tmp_path / "a"
    assert [w.code for w in config.warnings] == ["config-shadowed", "no-rules"]


def test_no_config_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="run `imgpipe init`"):
        load(directory=tmp_path)


def test_toml_syntax_error(tmp_path):
    (tmp_path / "imgpipe.toml").write_text("source = \n")
    with pytest.raises(ConfigError) as info:
        load(directory=tmp_path)
    assert info.value.code == "bad-toml" and "line 1" in str(info.value)


def test_starter_file_is_valid_commented_toml(tmp_path):
    text = starter_text()
    assert tomllib.loads(text) == STARTER and text.count("\n# ") > 5
    (tmp_path / "imgpipe.toml").write_text(text)
    assert load(directory=tmp_path).warnings == ()


@pytest.mark.parametrize("name", ["gallery/IMG_0001.JPG", "trip/DSC_0002.JPEG", "logo.PNG"])
def test_starter_rules_take_camera_file_names(tmp_path, name):
    """Issue 12: `imgpipe init`'s rules skipped upper-case extensions."""
    (tmp_path / "imgpipe.toml").write_text(starter_text())
    rules = load(directory=tmp_path).rules
    assert any(rule.matches(name) for rule in rules)


def test_repository_example_config_is_valid_and_matches_the_example_photos():
    from imgpipe.check import check

    config = load(directory=Path(__file__).resolve().parents[1])
    assert config.warnings == ()
    sources = dict(check(config)[0])
    assert len(sources) == 6 and sources["graphics/badge.png"] == (
        "badge-128-avif",
        "badge-128-webp",
        "badge-128-png",
        "badge-256-avif",
        "badge-256-webp",
        "badge-256-png",
    )


def test_init_writes_a_starter_that_check_accepts_and_never_overwrites(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from imgpipe.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    (tmp_path / "images/gallery").mkdir(parents=True)
    (tmp_path / "images/gallery/a.jpg").write_bytes(b"x")
    (tmp_path / "images/b.png").write_bytes(b"x")
    result = runner.invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "b.png: 480-webp, 480-auto, 800-webp, 800-auto, 1200-webp, 1200-auto, 1600-webp, 1600-auto",
        "gallery/a.jpg: thumb, large",
        "config ok: 2 rules, 2 sources, 10 renditions",
    ]
    again = runner.invoke(main, ["init"])
    assert again.exit_code == 1 and "already exists; use --force" in again.stderr


def test_check_reports_config_errors_with_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from imgpipe.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgpipe.toml").write_text(
        'source = "i"\noutput = "o"\n[[rules]]\ninclude = ["*"]\nwidths = [480, "x"]\n'
    )
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error[bad-type]: 'x' at rules[0].widths[1]: expected an integer "
        "from 1 to 10000, not a string\n"
    )


def test_check_shows_warnings_beside_errors(tmp_path, monkeypatch):
    """A misspelt key is often why a config is wrong: its warning comes with the errors."""
    from click.testing import CliRunner

    from imgpipe.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgpipe.toml").write_text(
        'source = "i"\noutput = "o"\n[[rules]]\ninclude = ["*"]\nwidths = [480, "x"]\n'
        'formts = ["webp"]\n'
    )
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "warning[unknown-key]: 'formts' at rules[0].formts: expected one of include, exclude, "
        "renditions, widths, formats, options, sizes, name, art, rasterize_svg, metadata; "
        "did you mean 'formats'?",
        "error[bad-type]: 'x' at rules[0].widths[1]: expected an integer from 1 to 10000, "
        "not a string",
    ]


@pytest.mark.parametrize(
    "options",
    ["", "2x,crop=auto", "quality=low, Trim", "fit,1.5x", "crop", "pad,bgcolor=000", "thumbish"],
)
def test_families_are_made_from_the_parsed_recipe(tmp_path, monkeypatch, options):
    """A family's options are parsed once; each member is that recipe with its width and
    format set, exactly what parsing the joined string used to give."""
    from imgpipe import options as opts
    from imgpipe import validate

    parsed = []
    monkeypatch.setattr(validate, "parse", lambda text: parsed.append(text) or opts.parse(text))
    (tmp_path / "images").mkdir()
    rule = {
        "include": ["*.jpg"],
        "widths": [320, 800, 1200],
        "formats": ["webp", "auto"],
        **({"options": options} if options else {}),
    }
    config = from_dict(raw(rules=[rule], presets={"thumbish": "pad,bgcolor=000"}), tmp_path)
    assert len(parsed) == (1 if options else 0) + 1  # the rule's options, the preset
    expanded = options.replace("thumbish", "pad,bgcolor=000")
    for spec in config.rules[0].renditions:
        fmt = spec.label.split("-")[1]
        joined = ",".join(
            t
            for t in (str(spec.width), expanded, f"format={fmt}" if fmt != "auto" else "")
            if t.strip()
        )
        assert spec.recipe == opts.parse(joined), joined
        # Same warnings; their token positions now count in `options`, as the user wrote it.
        assert [(w.code, w.message) for w in spec.recipe.warnings] == [
            (w.code, w.message) for w in opts.parse(joined).warnings
        ]


def test_check_lists_a_familys_videos_for_animations_only(tmp_path, monkeypatch):
    """The labels `check` prints are the ones a build makes: a family's video and poster for
    an animated GIF, its one-frame formats for a still one (SourcePlan.fitting)."""
    from animation_support import coloured_frames, gif, solid
    from click.testing import CliRunner

    from imgpipe.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images/anim.gif").write_bytes(gif(coloured_frames(64, 48, 4)))
    solid(64, 48, (200, 30, 30)).gifsave(str(tmp_path / "images/still.gif"))
    (tmp_path / "imgpipe.toml").write_text(
        'source = "images"\noutput = "out"\n[[rules]]\ninclude = ["*.gif"]\n'
        'widths = [32]\nformats = ["webm", "avif", "auto"]\n'
    )
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "anim.gif: 32-webm, 32-auto, 32-poster",
        "still.gif: 32-avif, 32-auto",
        "config ok: 1 rules, 2 sources, 5 renditions",
    ]
