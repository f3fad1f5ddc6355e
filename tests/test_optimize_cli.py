"""`imgpipe optimize OPTIONS SOURCE -o OUT`: exit statuses, warnings, stdout, atomic output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import imgpipe
from imgpipe.cli import main
from imgpipe.errors import ImageError, OptionError


@pytest.fixture
def photo(synth, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(synth.coords(1000, 500).jpegsave_buffer())
    return path


def test_writes_the_rendition_and_reports_it(photo, synth, tmp_path):
    out = tmp_path / "small.webp"
    result = CliRunner().invoke(
        main, ["optimize", "400x400,format=webp", str(photo), "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    image = synth.decode(out.read_bytes())
    assert (image.width, image.height) == (400, 200)
    assert "400x200 webp" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg", "small.webp"]  # no temp


def test_warnings_go_to_stderr_with_their_codes(photo, tmp_path):
    out = tmp_path / "small.jpg"
    result = CliRunner().invoke(main, ["optimize", "300,format=jpg", str(photo), "-o", str(out)])
    assert result.exit_code == 0
    assert "warning[format-alias]: format=jpg is read as format=jpeg" in result.stderr
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"


def test_dash_writes_to_stdout(photo, synth):
    result = CliRunner().invoke(main, ["optimize", "100,format=png", str(photo), "-o", "-"])
    assert result.exit_code == 0
    assert synth.decode(result.stdout_bytes).width == 100


def test_bad_options_exit_2_listing_every_problem(photo, tmp_path):
    out = tmp_path / "x.jpg"
    result = CliRunner().invoke(
        main, ["optimize", "800x600,bogus,quality=ultra", str(photo), "-o", str(out)]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error[unknown-token]: 'bogus'")
    assert lines[1].startswith("error[bad-quality]: 'quality=ultra'") and "medium" in lines[1]
    assert not out.exists()


def test_unwritable_output_is_a_clean_error(photo, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    result = CliRunner().invoke(
        main, ["optimize", "100", str(photo), "-o", str(tmp_path / "a-file" / "x.jpg")]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error[unwritable]:") and "Traceback" not in result.output


def test_missing_output_directory_is_created(photo, tmp_path):
    out = tmp_path / "new" / "dir" / "x.jpg"
    result = CliRunner().invoke(main, ["optimize", "100", str(photo), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"\xff\xd8"


COMMAND = [sys.executable, "-c", "from imgpipe.cli import main; main()"]


def test_the_command_runs_in_a_process_of_its_own(photo, tmp_path):
    out = tmp_path / "out.avif"
    run = subprocess.run(
        [*COMMAND, "optimize", "200x200,crop,format=avif", str(photo), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[4:12] == b"ftypavif"
    bad = subprocess.run(
        [
            *COMMAND,
            "optimize",
            "200",
            str(tmp_path / "out.avif.missing"),
            "-o",
            str(tmp_path / "o.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1


def test_api_returns_what_was_decided(photo):
    rendition = imgpipe.optimize(str(photo), "500,quality=low")
    assert (rendition.width, rendition.height, rendition.format) == (500, 250, "jpeg")
    assert rendition.quality == "low" and 0 < rendition.encoder_quality < 80
    assert rendition.score >= 82  # the low preset's target, give or take the tolerance
    assert imgpipe.optimize(photo.read_bytes(), "500").bytes > rendition.bytes
    with pytest.raises(OptionError):
        imgpipe.optimize(photo, "")
    with pytest.raises(ImageError):
        imgpipe.optimize(b"not an image", "full")


# Issue 12 item 4: `-o out.webp` wrote JPEG bytes into out.webp.
@pytest.mark.parametrize(
    "name,magic",
    [
        ("out.webp", (8, b"WEBP")),
        ("out.png", (1, b"PNG")),
        ("out.JPG", (0, b"\xff\xd8\xff")),
        ("out.jpeg", (0, b"\xff\xd8\xff")),
        ("out.gif", (0, b"GIF8")),
        ("out.avif", (4, b"ftypavif")),
    ],
)
def test_the_output_extension_chooses_the_format(photo, tmp_path, name, magic):
    out = tmp_path / name
    result = CliRunner().invoke(main, ["optimize", "200", str(photo), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    offset, signature = magic
    assert out.read_bytes()[offset : offset + len(signature)] == signature


def test_an_extension_contradicting_format_is_an_error_with_the_fix(photo, tmp_path):
    out = tmp_path / "out.webp"
    result = CliRunner().invoke(main, ["optimize", "200,format=png", str(photo), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error[extension-mismatch]: '{out}' at -o: expected a name ending in .png for "
        f"format=png; did you mean '{tmp_path / 'out.png'}'?; or leave format= out to write "
        "webp as the name says\n"
    )
    assert not out.exists()
    # An alias naming the same format agrees with the name.
    ok = CliRunner().invoke(
        main, ["optimize", "200,format=jpg", str(photo), "-o", str(tmp_path / "o.jpeg")]
    )
    assert ok.exit_code == 0, ok.stderr


def test_an_extension_naming_no_format_is_warned_about(photo, tmp_path):
    out = tmp_path / "out.tif"
    result = CliRunner().invoke(main, ["optimize", "200,format=png", str(photo), "-o", str(out)])
    assert result.exit_code == 0
    assert (
        f"warning[extension-unknown]: {out}: not an extension imgpipe writes; the file holds "
        f"PNG: name it {tmp_path / 'out.png'}"
    ) in result.stderr
    assert out.read_bytes()[1:4] == b"PNG"


def test_missing_and_unreadable_files_are_worded_alike(photo, tmp_path):
    """Issue 12 item 8: an unreadable file got click's usage text and exit status 2."""
    unreadable = tmp_path / "locked.jpg"
    unreadable.write_bytes(photo.read_bytes())
    unreadable.chmod(0)
    cases = {"missing": tmp_path / "nope.jpg", "directory": tmp_path, "unreadable": unreadable}
    # root reads any file: the command then drops to `nobody` once imgpipe is imported
    drop = (
        "import os, gettext, imgpipe.api, imgpipe.files, imgpipe.engine.source; "
        "os.setgid(65534); os.setuid(65534)"
    )
    tmp_path.chmod(0o755)
    for what, path in cases.items():
        as_nobody = what == "unreadable" and os.geteuid() == 0
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                "from imgpipe.cli import main; " + (drop + "; " if as_nobody else "") + "main()",
                *("optimize", "200", str(path), "-o", str(tmp_path / "o.jpg")),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 1, (what, run.stderr)
        assert run.stderr.startswith(f"error[unreadable]: {path}: cannot read the file ("), what
        assert run.stderr.rstrip().endswith(
            "; expected a readable image file; check the path and its permissions"
        ), what
        assert "Usage" not in run.stderr


def test_an_svg_source_is_drawn_and_says_so(tmp_path, synth):
    """Issue 12 item 8: `imgpipe optimize icon.svg` said imgpipe does not read SVG."""
    icon = tmp_path / "icon.svg"
    icon.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="16">'
        '<rect width="32" height="16" fill="#f00"/></svg>'
    )
    out = tmp_path / "icon.png"
    result = CliRunner().invoke(main, ["optimize", "64", str(icon), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    image = synth.decode(out.read_bytes())
    assert (image.width, image.height) == (64, 32)
    assert image.getpoint(10, 10)[:3] == [255, 0, 0]
    assert "an SVG is drawn at the size asked" in result.stderr
    assert "rasterize_svg = true" in result.stderr
    refused = CliRunner().invoke(main, ["optimize", "64", str(icon), "-o", str(tmp_path / "o.svg")])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error[svg-output]:")
    assert "imgpipe does not write SVG" in refused.stderr
