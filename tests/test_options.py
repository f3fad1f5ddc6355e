"""The option language as tables: input -> canonical form and warning codes, or exact error."""

from fractions import Fraction

import pytest

from imgpipe.errors import OptionError
from imgpipe.options import Recipe, parse

ACCEPTED = [
    # options, canonical, warning codes
    ("full", "full", []),
    ("800", "800", []),
    ("800x600", "800x600", []),
    ("x600", "x600", []),
    ("800,scale-down,1x,quality=medium,format=auto,timeout=30", "800", []),
    (
        "160x100,crop=auto,2x,quality=low,format=webp",
        "160x100,crop=auto,2x,quality=low,format=webp",
        [],
    ),
    (
        "format=webp,2x,crop=auto,160x100,quality=low",
        "160x100,crop=auto,2x,quality=low,format=webp",
        [],
    ),
    ("100x50,1.5x", "100x50,1.5x", []),
    ("100x50,1.50x", "100x50,1.5x", []),
    ("200x200,crop=0.75x0.5", "200x200,crop=0.75x0.5", []),
    ("200x200,crop=.75x.50", "200x200,crop=0.75x0.5", []),
    ("200x200,crop=left", "200x200,crop=left", []),
    ("200x200,crop", "200x200,crop", []),
    ("200x200,pad,bgcolor=000", "200x200,pad,bgcolor=000000", []),
    ("200x200,pad,bgcolor=abcdef", "200x200,pad,bgcolor=ABCDEF", []),
    ("200x200,pad,bgcolor=fff", "200x200,pad", []),
    ("trim=border,800", "800,trim", []),
    ("800,quality=42", "800,quality=42", []),
    ("800,quality=lossless", "800,quality=lossless", []),
    ("800,timeout=2.5", "800,timeout=2.5", []),
    ("800,format=jpg", "800,format=jpeg", ["format-alias"]),
    ("800,format=mp4", "800,format=h264", ["format-alias"]),
    ("800,900", "900", ["repeated-size"]),
    ("800,800", "800", ["repeated-size"]),  # two sizes, even equal ones, are worth a word
    ("crop,crop,200x200", "200x200,crop", ["repeated-option"]),
    ("800x600,fit,crop", "800x600,crop", ["repeated-option"]),
    ("800,fit,crop", "800", ["repeated-option", "crop-needs-box"]),
    ("full,2x", "full", ["density-without-size"]),
    ("800, 2x", "800,2x", ["whitespace"]),
    ("800,FORMAT=WEBP", "800,format=webp", ["uppercase"]),
    ("800,,2x", "800,2x", ["empty-token"]),
    ("100,crop", "100", ["crop-needs-box"]),
    ("x100,pad", "x100", ["crop-needs-box"]),
]


@pytest.mark.parametrize("text,canonical,codes", ACCEPTED)
def test_accepted(text, canonical, codes):
    recipe = parse(text)
    assert recipe.canonical() == canonical
    assert [w.code for w in recipe.warnings] == codes
    # Canonical strings are fixed points: same meaning, same string.
    assert parse(canonical).canonical() == canonical
    assert parse(canonical) == recipe


ERRORS = [
    # options, code, exact message of the first problem
    (
        "",
        "empty-options",
        "'': expected at least one token; use 'full' for no resizing; did you mean 'full'?",
    ),
    (
        "800x600,bogus",
        "unknown-token",
        "'bogus' at token 2: expected one of: full, W, WxH, xH (1..10000), a density 1x..3x, "
        "scale-down, fit, crop, crop=auto|top|bottom|left|right|FXxFY, pad, trim, "
        "bgcolor=RGB|RRGGBB, quality=low|medium|high|lossless|1..100, "
        "format=auto|jpeg|png|webp|avif|gif|webm|h264, metadata=strip|copyright|keep, "
        "timeout=SECONDS, aspect=W:H, focus=FXxFY",
    ),
    ("800,scale-dwn", "unknown-token", None),
    (
        "0x100",
        "size-out-of-range",
        "'0x100' at token 1: expected sizes as W, WxH or xH with integers 1..10000; "
        "did you mean '1x100'?",
    ),
    (
        "20000",
        "size-out-of-range",
        "'20000' at token 1: expected sizes as W, WxH or xH with integers 1..10000; "
        "did you mean '10000'?",
    ),
    ("quality=ultra", "bad-quality", None),
    ("crop=0.5", "bad-crop", None),
    (
        "crop=1.5x0.5",
        "bad-crop",
        "'crop=1.5x0.5' at token 1: expected focal point FXxFY with both in 0..1 (got 1.5); "
        "did you mean 'crop=0.5x0.5'?",
    ),
    ("crop=middle", "bad-crop", None),
    (
        "bgcolor=GGG",
        "bad-bgcolor",
        "'bgcolor=GGG' at token 1: expected bgcolor=RGB or bgcolor=RRGGBB in hex; "
        "did you mean 'bgcolor=FFF'?",
    ),
    ("timeout=-1", "bad-timeout", None),
    ("timeout=0", "bad-timeout", None),
    (
        "format=bmp",
        "bad-format",
        "'format=bmp' at token 1: expected format=auto|jpeg|png|webp|avif|gif|webm|h264; "
        "did you mean 'format=webp'?",
    ),
    (
        "5x",
        "bad-density",
        "'5x' at token 1: expected a density from 1x to 3x (e.g. 2x, 1.5x); did you mean '3x'?",
    ),
    ("0.5x", "bad-density", None),
    # Suggestions by meaning, not by edit distance (issue 12: `160x` suggested `3x`,
    # `crop=middle` suggested `crop=left`, `quality=101` suggested `quality=low`).
    (
        "160x",
        "incomplete-size",
        "'160x' at token 1: expected a size W, WxH or xH (1..10000) or a density 1x..3x; "
        "did you mean '160x160'?; or '160' for a width alone",
    ),
    (
        "crop=middle",
        "bad-crop",
        "'crop=middle' at token 1: expected crop=auto|top|bottom|left|right or a focal point "
        "crop=FXxFY (0..1); did you mean 'crop'?",
    ),
    (
        "crop=smart",
        "bad-crop",
        "'crop=smart' at token 1: expected crop=auto|top|bottom|left|right or a focal point "
        "crop=FXxFY (0..1); did you mean 'crop=auto'?",
    ),
    (
        "crop=lft",
        "bad-crop",
        "'crop=lft' at token 1: expected crop=auto|top|bottom|left|right or a focal point "
        "crop=FXxFY (0..1); did you mean 'crop=left'?",
    ),
    (
        "crop=xyz",
        "bad-crop",
        "'crop=xyz' at token 1: expected crop=auto|top|bottom|left|right or a focal point "
        "crop=FXxFY (0..1); use 'crop' to keep the centre or 'crop=auto' to keep the most "
        "important area",
    ),
    (
        "quality=101",
        "bad-quality",
        "'quality=101' at token 1: expected quality=low|medium|high|lossless or 1..100; "
        "did you mean 'quality=100'?",
    ),
    (
        "quality=0",
        "bad-quality",
        "'quality=0' at token 1: expected quality=low|medium|high|lossless or 1..100; "
        "did you mean 'quality=1'?",
    ),
    ("trim=all", "bad-trim", None),
    ("size=800", "unknown-token", None),
]


@pytest.mark.parametrize("text,code,message", ERRORS)
def test_errors(text, code, message):
    with pytest.raises(OptionError) as info:
        parse(text)
    assert info.value.code == code
    assert info.value.exit_code == 2
    if message is not None:
        assert info.value.problems[0].message == message


def test_every_problem_is_listed():
    with pytest.raises(OptionError) as info:
        parse("bogus,quality=ultra,format=bmp")
    assert [p.code for p in info.value.problems] == ["unknown-token", "bad-quality", "bad-format"]
    assert [p.where for p in info.value.problems] == ["token 1", "token 2", "token 3"]


def test_close_match_is_suggested():
    with pytest.raises(OptionError) as info:
        parse("800,scale-dwn")
    assert "did you mean 'scale-down'?" in str(info.value)


def test_recipe_values():
    recipe = parse("160x100,crop=0.25x0.75,2x,quality=low,format=webp")
    assert recipe == Recipe(
        width=160,
        height=100,
        density=Fraction(2),
        mode="crop",
        gravity="focal",
        focal=(Fraction(1, 4), Fraction(3, 4)),
        quality="low",
        format="webp",
    )
    assert recipe.box() == (320, 200)


def test_byte_form_leaves_out_timeout():
    assert parse("800,timeout=5").byte_form() == parse("800").byte_form()
    assert parse("800,timeout=5").canonical() != parse("800").canonical()


def test_recipes_are_immutable():
    with pytest.raises(AttributeError):
        parse("800").width = 10


def test_one_error_wording_engine_failures_through_describe():
    """The engine words a bad file with `errors.describe` too (engine/failure.fail is only its
    shorthand): name, what is wrong, what was expected, what to do."""
    from imgpipe.engine.failure import fail
    from imgpipe.errors import describe

    error = fail("truncated", "cat.jpg", "the file ends early", "a whole JPEG", "re-export it")
    assert error.problems == [
        describe(
            "truncated",
            "cat.jpg",
            "a whole JPEG",
            problem="the file ends early",
            advice="re-export it",
        )
    ]
    assert (
        str(error) == "truncated: cat.jpg: the file ends early; expected a whole JPEG; re-export it"
    )
