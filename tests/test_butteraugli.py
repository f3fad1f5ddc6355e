"""engine/butteraugli.py against the real butteraugli_main (Debian's libjxl-devtools) on real
encodes of a real photo, small so the whole file runs in a few seconds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pyvips

from imgpipe.engine import butteraugli
from imgpipe.engine.encode import Encoding, encode

PHOTO = Path(__file__).parent.parent / "example-site/images/photos/ladybird.jpg"
TOLERANCE = 0.03  # relative, on the 3-norm and the max (bench_butteraugli.py: mean ~1.5%)
JPEG_QUALITIES = (35, 60, 85)

pytestmark = pytest.mark.skipif(
    shutil.which("butteraugli_main") is None,
    reason="butteraugli_main (apt-get install libjxl-devtools) is the reference these tests "
    "compare with",
)


def judged(reference: pyvips.Image, distorted: pyvips.Image, tmp: Path) -> tuple[float, float]:
    """butteraugli_main's (max, 3-norm) of the pair."""
    reference.pngsave(str(tmp / "reference.png"))
    distorted.pngsave(str(tmp / "distorted.png"))
    out = subprocess.run(
        ["butteraugli_main", str(tmp / "reference.png"), str(tmp / "distorted.png")]
        + ["--pnorm", "3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return float(out.split()[0]), float(re.search(r"3-norm: ([\d.]+)", out).group(1))


def psnr(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    mse = ((reference.numpy().astype(float) - distorted.numpy()) ** 2).mean()
    return float(10 * np.log10(255**2 / mse))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The photo at 200 px (an odd height: the half-size pass has a ragged edge), encoded as
    JPEG at 3 qualities, WebP and AVIF; each pair judged by butteraugli_main and by us."""
    tmp = tmp_path_factory.mktemp("butteraugli")
    reference = pyvips.Image.thumbnail(str(PHOTO), 200).copy_memory()
    assert reference.height % 2 == 1
    encodings = [("jpeg", q) for q in JPEG_QUALITIES] + [("webp", 70), ("avif", 45)]
    found = []
    for fmt, q in encodings:
        data = encode(reference, Encoding(fmt, q, q))
        distorted = pyvips.Image.new_from_buffer(data, "").copy_memory()
        their_max, their_p3 = judged(reference, distorted, tmp)
        our_max, our_p3 = butteraugli.scores(reference, distorted)
        found.append(
            {"fmt": fmt, "q": q, "their": (their_max, their_p3), "ours": (our_max, our_p3),
             "psnr": psnr(reference, distorted), "reference": reference, "distorted": distorted}
        )  # fmt: skip
    return found


def test_scores_match_butteraugli_main(pairs: list[dict]) -> None:
    for pair in pairs:
        (their_max, their_p3), (our_max, our_p3) = pair["their"], pair["ours"]
        assert our_p3 == pytest.approx(their_p3, rel=TOLERANCE), pair
        assert our_max == pytest.approx(their_max, rel=TOLERANCE), pair
    # distance() is the 3-norm that scores() reports.
    assert butteraugli.pnorm3(np.full((8, 8), 2.0, np.float32)) == pytest.approx(2.0)


def test_reference_compares_many(pairs: list[dict]) -> None:
    """One Reference, its side computed once, scores every encode as a fresh comparison does
    (in another order: a comparison must leave the reference's side as it found it)."""
    reference = butteraugli.Reference(pairs[0]["reference"])
    for pair in reversed(pairs):
        assert reference.scores(pair["distorted"]) == pair["ours"], pair
        assert reference.distance(pair["distorted"]) == pair["ours"][1]


def test_orders_jpeg_qualities_as_butteraugli_main(pairs: list[dict]) -> None:
    jpegs = [p for p in pairs if p["fmt"] == "jpeg"]
    theirs = [p["their"][1] for p in jpegs]
    ours = [p["ours"][1] for p in jpegs]
    assert theirs == sorted(theirs, reverse=True)  # the encodes really differ in quality
    assert ours == sorted(ours, reverse=True)


def test_tolerance_fails_a_naive_metric(pairs: list[dict]) -> None:
    """The tolerance means something: a PSNR-based distance scaled to butteraugli_main on
    the middle JPEG misses it elsewhere by far more, while ours holds everywhere."""
    anchor = next(p for p in pairs if p["fmt"] == "jpeg" and p["q"] == JPEG_QUALITIES[1])

    def naive(pair: dict) -> float:  # a distance falling as PSNR rises, equal at the anchor
        return anchor["their"][1] * 10 ** ((anchor["psnr"] - pair["psnr"]) / 20)

    naive_errors = [abs(naive(p) / p["their"][1] - 1) for p in pairs]
    our_errors = [abs(p["ours"][1] / p["their"][1] - 1) for p in pairs]
    assert max(naive_errors) > 4 * TOLERANCE
    assert max(our_errors) <= TOLERANCE


def test_refuses_what_it_cannot_judge() -> None:
    rgb = pyvips.Image.black(32, 32, bands=3).cast("uchar")
    with pytest.raises(ValueError, match="without alpha"):
        butteraugli.distance(rgb.bandjoin(255), rgb.bandjoin(255))
    with pytest.raises(ValueError, match="at least 8x8"):
        butteraugli.distance(rgb.crop(0, 0, 6, 6), rgb.crop(0, 0, 6, 6))
    with pytest.raises(ValueError, match="same size"):
        butteraugli.distance(rgb, rgb.crop(0, 0, 16, 16))
    with pytest.raises(ValueError, match="same size"):
        butteraugli.Reference(rgb).distance(rgb.crop(0, 0, 16, 16))
