"""`imgpipe optimize OPTIONS SOURCE -o OUT`: exit statuses, warnings, stdout, atomic output."""

from __future__ import annotations

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
