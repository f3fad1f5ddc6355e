"""Transparent sources (issue 12 item 6): a JPEG fallback flattens them with a coded warning in
`check`, the build and the manifest; the starter rules keep transparency ("auto": PNG for
images with transparent pixels); `placeholder=True` puts nothing behind a transparent image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import imgpipe
from imgpipe.build import build
from imgpipe.cli import main
from imgpipe.config import load
from imgpipe.html import Images

pyvips = pytest.importorskip("pyvips")

PHOTO = Path(__file__).resolve().parents[1] / "example-site/images/photos/dune.jpg"


def logo(path: Path) -> None:
    """A red disc on transparent pixels."""
    disc = pyvips.Image.black(240, 160).draw_circle(255, 120, 80, 60, fill=True)
    zero = disc.linear(0, 0)
    disc.bandjoin([zero, zero, disc]).cast("uchar").copy(interpretation="srgb").write_to_file(
        str(path)
    )


def project(tmp_path: Path, formats: str | None) -> Path:
    """The starter config (`imgpipe init`), with small widths (quick to build) and its
    family's formats replaced if asked."""
    assert CliRunner().invoke(main, ["init", str(tmp_path / "imgpipe.toml")]).exit_code == 0
    text = (tmp_path / "imgpipe.toml").read_text()
    assert "widths = [480, 800, 1200, 1600]" in text
    text = text.replace("widths = [480, 800, 1200, 1600]", "widths = [120, 200]")
    if formats is not None:
        text = text.replace('formats = ["webp", "auto"]', f"formats = {formats}")
    (tmp_path / "imgpipe.toml").write_text(text)
    (tmp_path / "images").mkdir()
    logo(tmp_path / "images/logo.png")
    (tmp_path / "images/dune.jpg").write_bytes(PHOTO.read_bytes())
    return tmp_path / "imgpipe.toml"


def test_the_starter_rules_keep_transparency(tmp_path, monkeypatch):
    toml = project(tmp_path, None)
    monkeypatch.chdir(tmp_path)
    checked = CliRunner().invoke(main, ["check"])
    assert checked.exit_code == 0 and "alpha-flattened" not in checked.stderr
    summary = build(load(toml))
    assert summary.ok and not [w for w in summary.warnings if w.code == "alpha-flattened"]
    sources = json.loads((tmp_path / "public/img/imgpipe-manifest.json").read_text())["sources"]
    assert sources["logo.png"]["srcsets"]["default"]["fallback"] == "png"
    assert sources["dune.jpg"]["srcsets"]["default"]["fallback"] == "jpeg"
    fallback = pyvips.Image.new_from_file(
        str(tmp_path / "public/img" / sources["logo.png"]["renditions"]["200-auto"]["path"])
    )
    assert fallback.hasalpha() and fallback.getpoint(2, 2)[3] == 0  # still transparent


def test_a_jpeg_fallback_warns_in_check_build_and_manifest(tmp_path, monkeypatch):
    toml = project(tmp_path, '["webp", "jpeg"]')
    monkeypatch.chdir(tmp_path)
    checked = CliRunner().invoke(main, ["check"])
    assert checked.exit_code == 0
    assert checked.stderr.splitlines() == [
        "warning[alpha-flattened]: logo.png: has transparent pixels, but 120-jpeg, 200-jpeg are "
        "JPEG, which has none: transparent pixels would be flattened onto the bgcolor "
        "(white); use the format auto instead, which picks PNG for transparent images (in a "
        'family: formats = ["webp", "auto"])'
    ]
    summary = build(load(toml))
    flattened = [w for w in summary.warnings if w.code == "alpha-flattened"]
    assert {(w.source, w.label) for w in flattened} == {
        ("logo.png", "120-jpeg"),
        ("logo.png", "200-jpeg"),
    }
    entry = json.loads((tmp_path / "public/img/imgpipe-manifest.json").read_text())["sources"][
        "logo.png"
    ]
    assert [(w["label"], w["code"]) for w in entry["warnings"]] == [
        ("120-jpeg", "alpha-flattened"),
        ("200-jpeg", "alpha-flattened"),
    ]
    assert entry["warnings"][0]["message"] == (
        "the image has transparent pixels, which JPEG cannot keep: they are flattened onto "
        "#FFFFFF; use format=auto (PNG for transparent images) or format=webp to keep them"
    )
    # An opaque photo is never warned about.
    assert not [w for w in summary.warnings if w.source == "dune.jpg"]


def test_an_opaque_alpha_channel_is_no_warning_in_check_nor_build(tmp_path, monkeypatch):
    """`check` read only the header, so it warned about an RGBA file whose every pixel is
    opaque, which the build (reading the pixels) does not: now both read the alpha band."""
    toml = project(tmp_path, '["webp", "jpeg"]')
    opaque = pyvips.Image.new_from_file(str(tmp_path / "images/logo.png"))[:3].bandjoin(255)
    opaque.copy(interpretation="srgb").write_to_file(str(tmp_path / "images/logo.png"))
    assert pyvips.Image.new_from_file(str(tmp_path / "images/logo.png")).bands == 4
    monkeypatch.chdir(tmp_path)
    checked = CliRunner().invoke(main, ["check"])
    assert checked.exit_code == 0 and "alpha-flattened" not in checked.stderr, checked.stderr
    summary = build(load(toml))
    assert summary.ok and not [w for w in summary.warnings if w.code == "alpha-flattened"]


def test_optimize_to_jpeg_warns_too(tmp_path):
    logo(tmp_path / "logo.png")
    flat = imgpipe.optimize(tmp_path / "logo.png", "full,format=jpeg")
    assert [w.code for w in flat.warnings] == ["alpha-flattened"]
    assert imgpipe.optimize(tmp_path / "logo.png", "full").warnings == ()


def test_no_placeholder_square_behind_a_transparent_image(tmp_path):
    project(tmp_path, None)
    assert build(load(tmp_path / "imgpipe.toml")).ok
    images = Images(tmp_path / "public/img/imgpipe-manifest.json")
    assert images.entry("logo.png")["alpha"] is True
    assert images.entry("logo.png")["placeholder"] is not None  # still in the manifest
    assert 'style="height:auto"' in str(images.picture("logo.png", alt="logo", placeholder=True))
    assert "background:" in str(images.picture("dune.jpg", alt="dune", placeholder=True))
