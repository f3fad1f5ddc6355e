"""Family widths above a small source's size collapse into one candidate (issue 12 item 5),
built for real: no byte-identical files under several names, each width listed once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imgpipe import build as b
from imgpipe.config import from_dict
from imgpipe.report import summary_lines

pyvips = pytest.importorskip("pyvips")

RULES = [
    {
        "include": ["**/*.png"],
        "widths": [200, 480, 960, 1600],
        "formats": ["webp", "jpeg"],
        "sizes": "100vw",
    }
]


def configured(root: Path):
    raw = {"source": "images", "output": "public", "cache_dir": ".cache", "rules": RULES}
    return from_dict(raw, root)


def outputs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root / "public")): p.read_bytes()
        for p in sorted((root / "public").rglob("*"))
        if p.is_file() and p.suffix in (".webp", ".jpg")
    }


def test_widths_that_would_enlarge_make_one_candidate(tmp_path):
    (tmp_path / "images").mkdir()
    photo = pyvips.Image.new_from_file(
        str(Path(__file__).resolve().parents[1] / "example-site/images/photos/storm.jpg")
    ).thumbnail_image(371)
    photo.write_to_file(str(tmp_path / "images/small.png"))
    config = configured(tmp_path)

    summary = b.build(config)
    assert summary.ok
    files = outputs(tmp_path)
    digests = [hashlib.sha256(data).hexdigest() for data in files.values()]
    assert len(digests) == len(set(digests)), "byte-identical files under several names"
    assert len(files) == 4  # 200 and 371 px, in WebP and JPEG

    entry = json.loads((tmp_path / "public/imgpipe-manifest.json").read_text())["sources"][
        "small.png"
    ]
    assert sorted(entry["renditions"]) == ["200-jpeg", "200-webp", "480-jpeg", "480-webp"]
    assert entry["renditions"]["480-webp"]["width"] == 371
    group = entry["srcsets"]["default"]
    for fmt in ("webp", "jpeg"):
        assert [c["width"] for c in group["formats"][fmt]] == [200, 371]
    # Every listed URL is a file that exists, and every file is listed.
    listed = {r["path"] for r in entry["renditions"].values()}
    assert listed == set(files)

    notes = [w for w in summary.warnings if w.code == "widths-collapsed"]
    assert [(n.stage, n.source) for n in notes] == [("info", "small.png")]
    assert notes[0].message == (
        "371 px wide, so widths 480, 960, 1600 would enlarge it: they make one candidate at "
        "its own width (labelled 480)"
    )
    assert (
        "info[widths-collapsed]: small.png: 371 px wide, so widths 480, 960, 1600 would "
        "enlarge it: they make one candidate at its own width (labelled 480)"
    ) in summary_lines(summary)

    # A name always holds the same bytes: rebuilt from scratch, the same names and bytes;
    # and a later build finds everything cached (nothing re-rendered for the collapsed ones).
    again = b.build(config, force=True)
    assert again.ok and outputs(tmp_path) == files
    (tmp_path / "public" / next(iter(files))).unlink()
    cached = b.build(config)
    assert cached.built == 0 and outputs(tmp_path) == files
