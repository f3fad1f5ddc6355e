"""The butteraugli check of a search's answer (engine/judge.py), through the real engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgpipe.engine import judge
from imgpipe.engine.encode import TARGETS
from imgpipe.options import parse

PHOTOS = sorted((Path(__file__).parent.parent / "example-site/images/photos").glob("*.jpg"))


def butteraugli_of(photo: Path, options: str) -> float:
    """Our butteraugli of `photo`'s rendition against the same resize kept lossless."""
    import pyvips

    from imgpipe.engine import butteraugli, open_source

    source = open_source(photo.read_bytes())
    made = source.render(parse(options))
    lossless = source.render(parse(f"{options.split(',')[0]},format=png,quality=high"))
    return butteraugli.distance(
        pyvips.Image.new_from_buffer(lossless.data, ""), pyvips.Image.new_from_buffer(made.data, "")
    )


@pytest.mark.parametrize("fmt", ["avif", "webp", "jpeg"])
def test_medium_lands_where_butteraugli_puts_the_preset(fmt):
    """At 400 px the check sees the whole rendition: what is left is the search's own
    tolerance (1 score point, 0.1 butteraugli). Unchecked, the metric's error on these photos
    puts them up to 0.28 away (JPEGs at 0.92 and 1.46, an AVIF and a WebP at 1.43)."""
    goal = (100 - TARGETS["medium"]) / 10
    landed = [butteraugli_of(photo, f"400,format={fmt}") for photo in PHOTOS]
    assert all(abs(d - goal) <= 0.13 for d in landed), landed


def test_the_window_goes_where_the_errors_are():
    errors = np.full((60, 80), 0.01, dtype=np.float32)
    errors[40:50, 60:70] = 1.0  # a damaged patch, bottom right (map at 1:4)
    left, top = judge._worst(errors, 80, 64)  # a 20 x 16 window at 1:4
    assert left <= 60 * 4 and left + 80 >= 70 * 4
    assert top <= 40 * 4 and top + 64 >= 50 * 4


def test_transparent_and_tiny_images_are_not_checked():
    import pyvips

    from imgpipe.engine import metric

    rgba = pyvips.Image.black(64, 64, bands=4).copy(interpretation="srgb").cast("uchar") + 128
    tiny = pyvips.Image.black(40, 40, bands=3).copy(interpretation="srgb").cast("uchar") + 90
    for image in (rgba, tiny):
        scorer = metric.Reference(image) if metric.scorable(image.width, image.height) else None
        check = judge.Check(scorer, image)  # type: ignore[arg-type]
        assert check.correction(image, "webp", 0.0) == 0.0


def test_checks_on_one_window_share_its_reference_side():
    """A search checks up to 3 encodings; on the same window (here the whole 300 px image)
    the reference's side is computed once and the corrections are those of fresh checks."""
    import pyvips

    from imgpipe.engine import metric
    from imgpipe.engine.encode import Encoding, encode

    final = pyvips.Image.thumbnail(str(PHOTOS[0]), 300).copy_memory()
    scorer = metric.Reference(final)
    encoded = [
        pyvips.Image.new_from_buffer(encode(final, Encoding("jpeg", q, q)), "").copy_memory()
        for q in (40, 80)
    ]
    fresh = [judge.Check(scorer, final).correction(e, "jpeg", 0.3) for e in encoded]
    assert fresh[0] != fresh[1]
    check = judge.Check(scorer, final)
    assert check.correction(encoded[0], "jpeg", 0.3) == fresh[0]
    (sides,) = check._sides.values()
    assert check.correction(encoded[1], "jpeg", 0.3) == fresh[1]
    assert check.correction(encoded[0], "jpeg", 0.3) == fresh[0]
    assert list(check._sides.values()) == [sides]


def test_the_probe_only_seeds_the_search_so_it_is_not_checked(monkeypatch):
    """The 320 px probe's answer only says where a rendition's search starts; the check is
    for the answers that are kept (optimise.PROBE_BOX)."""
    from imgpipe.engine import open_source

    checked = []
    real = judge.Check.correction

    def counted(self, encoded, fmt, average):  # type: ignore[no-untyped-def]
        checked.append(self.final.width)
        return real(self, encoded, fmt, average)

    monkeypatch.setattr(judge.Check, "correction", counted)
    made = open_source(PHOTOS[0].read_bytes()).render(parse("800,format=webp"))
    assert made.width == 800
    assert checked and set(checked) == {800}, checked


def test_a_big_rendition_is_judged_where_the_metric_sees_errors_and_in_its_centre(monkeypatch):
    """Either window alone misjudged some held-out photos (judge.py's table): a rendition
    bigger than one window is judged in two, one covering the damage, one centred; an image
    the window covers, once."""
    import pyvips

    from imgpipe.engine import metric

    boxes: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(
        judge.Check, "_error", lambda self, box, encoded, fmt: boxes.append(box) or 0.0
    )
    final = pyvips.Image.black(1200, 800, bands=3).copy(interpretation="srgb").cast("uchar") + 128
    damaged = final.draw_rect([0, 0, 0], 700, 440, 200, 120, fill=True)  # bottom right
    judge.Check(metric.Reference(final), final).correction(damaged, "webp", 0.0)
    (worst, centre) = sorted(boxes, reverse=True)
    assert centre == (360, 240, 480, 320)
    left, top, width, height = worst
    assert left <= 700 and left + width >= 900 and top <= 440 and top + height >= 560

    boxes.clear()
    small = final.crop(0, 0, 480, 320)
    damaged = small.draw_rect([0, 0, 0], 0, 0, 50, 50, fill=True)
    judge.Check(metric.Reference(small), small).correction(damaged, "webp", 0.0)
    assert boxes == [(0, 0, 480, 320)]
