"""The cost of an undo: build the example site, replace one photo, build, put it back, build.
With the default `cache_keep` the third build copies the photo's renditions from the cache;
with `cache_keep = 0` (what the cache did before it kept retired results) it encodes them again.

Not a test; run by hand: python bench/bench_undo.py [--repeats 3]
Prints, per budget, the renditions built by the undo build and its wall time (median).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgpipe import build as builder  # noqa: E402
from imgpipe.config import from_dict  # noqa: E402

RULES = [
    {"include": ["photos/*.jpg"], "widths": [480, 960, 1600], "formats": ["avif", "webp", "jpeg"]}
]


def undo(cache_keep: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "example-site/images", root / "images")
        config = from_dict(
            {
                "source": "images",
                "output": "public",
                "cache_dir": ".cache",
                "jobs": 2,
                "cache_keep": cache_keep,
                "rules": RULES,
            },
            root,
        )
        photo = root / "images/photos/dune.jpg"
        original = photo.read_bytes()
        builder.build(config)
        shutil.copy(root / "images/photos/storm.jpg", photo)  # the edit
        builder.build(config)
        photo.write_bytes(original)  # the undo
        started = time.perf_counter()
        summary = builder.build(config)
        return summary.built, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for keep in (256_000_000, 0):
        runs = [undo(keep) for _ in range(args.repeats)]
        built = {b for b, _ in runs}
        seconds = statistics.median(s for _, s in runs)
        print(f"cache_keep={keep}: undo build built {built} renditions in {seconds:.2f} s (median)")


if __name__ == "__main__":
    main()
