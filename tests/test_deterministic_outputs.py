"""The same output name always holds the same bytes (issue 18.5), and `optimize` gives the bytes
a build gives (issue 11.4): a rendition is a function of the source and its own options alone,
whatever else is built with it, in whatever order, on however many threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgpipe import build as b
from imgpipe.config import from_dict
from imgpipe.engine import open_source
from imgpipe.options import parse

pyvips = pytest.importorskip("pyvips")

PHOTOS = Path(__file__).parent.parent / "example-site/images/photos"


def make_sources(directory: Path, width: int) -> None:
    """Two real photos, one progressive with an EXIF turn (decoded, then rotated), and a PNG
    with alpha."""
    directory.mkdir(parents=True)
    for name in ("dune.jpg", "storm.jpg"):
        image = pyvips.Image.new_from_file(str(PHOTOS / name)).thumbnail_image(width)
        if name == "storm.jpg":
            image = image.copy()
            image.set_type(pyvips.GValue.gint_type, "orientation", 6)
        image.jpegsave(str(directory / name), Q=92, interlace=name == "storm.jpg")
    rgba = pyvips.Image.new_from_file(str(PHOTOS / "dune.jpg")).thumbnail_image(width // 2)
    rgba.bandjoin(rgba[1]).copy(interpretation="srgb").pngsave(str(directory / "leaf.png"))


def build_site(
    root: Path, widths: list[int], formats: list[str], options: str, jobs: int
) -> dict[str, bytes]:
    """A fresh build (own output and cache); every file it wrote, by name."""
    raw = {
        "source": str(root.parent / "images"),
        "output": "public",
        "cache_dir": "cache",
        "jobs": jobs,
        "rules": [
            {"include": ["*.{jpg,png}"], "widths": widths, "formats": formats, "options": options}
        ],
    }
    root.mkdir()
    summary = b.build(from_dict(raw, root))
    assert summary.failed == 0
    return {
        str(p.relative_to(root / "public")): p.read_bytes()
        for p in sorted((root / "public").rglob("*"))
        if p.is_file()
    }


def renditions(files: dict[str, bytes]) -> dict[str, bytes]:
    return {
        name: data
        for name, data in files.items()
        if not name.startswith("imgpipe-") and not name.endswith(".html")
    }


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_deterministic_outputs(tmp_path, fmt):
    # 700 px sources: 160 px alone loads at JPEG shrink 2; next to 640 px it used to be cut
    # from the full decode that 640 px needs.
    make_sources(tmp_path / "images", 700)
    small = renditions(build_site(tmp_path / "small", [160], [fmt], "quality=70", jobs=1))
    large = renditions(build_site(tmp_path / "large", [640], [fmt], "quality=70", jobs=2))
    together = renditions(
        build_site(tmp_path / "together", [160, 320, 640], [fmt], "quality=70", jobs=2)
    )
    reordered = renditions(
        build_site(tmp_path / "reordered", [640, 160, 320], [fmt], "quality=70", jobs=1)
    )
    assert len(small) == len(large) == 3 and len(together) == 9  # 3 sources
    assert set(small) | set(large) < set(together) and set(together) == set(reordered)
    for name, data in {**small, **large}.items():
        assert together[name] == data, name
    for name, data in together.items():
        assert reordered[name] == data, name


def test_deterministic_outputs_with_a_quality_preset(tmp_path):
    """The perceptual search starts from the tables for each rendition, not from what another
    size of the same source found: a different start can end on a different quality."""
    make_sources(tmp_path / "images", 480)
    alone = renditions(
        build_site(tmp_path / "alone", [240], ["webp", "jpeg"], "quality=medium", jobs=1)
    )
    files = build_site(
        tmp_path / "together", [80, 160, 240, 400], ["jpeg", "webp"], "quality=medium", jobs=2
    )
    together = renditions(files)
    # A WebP that lost to the JPEG at 400 px is not encoded at 240 px at all (skips.py): its
    # name is missing, and the manifest says so. Every name that is there holds the same bytes.
    manifest = json.loads(files["imgpipe-manifest.json"])
    unencoded = {
        f"{Path(rel).stem}-{d['width']}-{d['format']}"
        for rel, entry in manifest["sources"].items()
        for d in entry["srcsets"]["default"]["dropped"]
        if d["url"] is None
    }
    assert len(alone) == 6 and len(set(alone) & set(together)) >= 4
    for name, data in alone.items():
        if name in together:
            assert together[name] == data, name
        else:
            assert name.split(".")[0] in unencoded, name


def test_deterministic_outputs_jobs_1_and_2_give_identical_outputs_and_manifest(tmp_path):
    make_sources(tmp_path / "images", 800)
    one = build_site(tmp_path / "one", [160, 320, 640], ["webp", "jpeg"], "quality=75", jobs=1)
    two = build_site(tmp_path / "two", [160, 320, 640], ["webp", "jpeg"], "quality=75", jobs=2)
    assert "imgpipe-manifest.json" in one
    assert one == two


def test_render_alone_and_among_others_gives_the_same_bytes(synth):
    """Within the engine: alone (streamed), sharing a decode (in memory), with a placeholder
    from the same decode, and after a size that loads at another shrink factor."""
    photo = pyvips.Image.new_from_file(str(PHOTOS / "dune.jpg")).thumbnail_image(1400)
    data = photo.jpegsave_buffer(Q=90)
    recipes = [
        parse(o)
        for o in (
            "100,format=webp,quality=70",
            "80,format=jpeg,quality=70",
            "700,format=avif,quality=50",
            "60x60,crop,quality=70",
        )
    ]
    together = open_source(data).render_all(recipes)
    backwards = open_source(data).render_all(recipes[::-1])[::-1]
    for recipe, among, reverse in zip(recipes, together, backwards, strict=True):
        alone = open_source(data).render(recipe)
        assert alone.data == among.data == reverse.data, recipe


def test_placeholder_does_not_depend_on_the_renditions_built_with_it():
    data = (PHOTOS / "dune.jpg").read_bytes()
    placeholders = set()
    for options in ([], ["1600"], ["100", "1200,format=webp"]):
        source = open_source(data)
        source.render_all([parse(o) for o in options])
        placeholders.add(source.info.placeholder)
    assert len(placeholders) == 1 and None not in placeholders


# --- issue 11.4: the single-output path streams ---------------------------------------------


def test_optimize_streams_one_rendition_and_makes_no_placeholder(monkeypatch):
    """No in-memory decode and no placeholder for one rendition (imgpipe optimize, serve),
    and still the bytes a build makes."""
    import imgpipe
    from imgpipe.engine import placeholder
    from imgpipe.engine import source as source_module

    data = (
        pyvips.Image.new_from_file(str(PHOTOS / "dune.jpg"))
        .thumbnail_image(900)
        .jpegsave_buffer(Q=90)
    )
    built = {
        o: open_source(data).render_all([parse(o), parse("100")])[0].data
        for o in ("300,format=jpeg,quality=80", "300,format=webp,quality=80")
    }

    def refused(*args, **kwargs):
        raise AssertionError("the single-output path decoded into memory or made a placeholder")

    monkeypatch.setattr(source_module, "decode", refused)
    monkeypatch.setattr(placeholder, "make", refused)
    for options, data_built in built.items():
        assert imgpipe.optimize(data, options).data == data_built


def test_a_streamed_truncated_jpeg_fails_as_in_a_build():
    photo = pyvips.Image.new_from_file(str(PHOTOS / "dune.jpg")).thumbnail_image(600)
    data = photo.jpegsave_buffer(Q=90)
    cut = data[: len(data) // 2]
    source = open_source(cut)
    streamed = source.render_all([parse("300,format=webp,quality=80")])[0]
    with pytest.raises(Exception) as alone:
        open_source(cut).render(parse("300,format=webp,quality=80"))
    shared = open_source(cut).render_all(
        [parse("300,format=webp,quality=80"), parse("290,format=webp,quality=80")]
    )[0]
    assert alone.value.code == streamed.code == shared.code == "truncated"
    assert str(alone.value) == str(shared)


def test_avif_bytes_do_not_depend_on_the_thread_count_libvips_is_given(tmp_path):
    """aom's AVIF bytes change with the threads libvips gives it (1, 2, 4 threads: three
    different files). A cluster worker, a laptop and a CI runner must still write the same
    bytes under one content-hashed name, whatever VIPS_CONCURRENCY or core count they have."""
    import hashlib
    import os
    import subprocess
    import sys

    source = tmp_path / "dune.jpg"
    pyvips.Image.new_from_file(str(PHOTOS / "dune.jpg")).thumbnail_image(640).jpegsave(
        str(source), Q=90
    )
    script = (
        "import sys; from imgpipe.engine import open_source; from imgpipe.model import Limits; "
        "from imgpipe.options import parse; "
        "r = open_source(sys.argv[1], Limits()).render(parse('480,format=avif,quality=60')); "
        "sys.stdout.buffer.write(r.data)"
    )
    digests = set()
    for threads in ("1", "2", "4"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(source)],
            capture_output=True,
            env={**os.environ, "VIPS_CONCURRENCY": threads},
            timeout=300,
            check=True,
        )
        digests.add(hashlib.sha256(done.stdout).hexdigest())
    assert len(digests) == 1
