"""Generate a site of N tiny, distinct source images for the no-op build benchmark.

    python bench/gen_sources.py bench/.out/noop --count 10000

Writes DIR/images/dNN/imgNNNNN.jpg (100 per directory, like a real site's sections) and
DIR/imgpipe.toml with one named rendition and a two-width family (3 renditions and one
snippet per source).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyvips

CONFIG = """source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"

[[rules]]
include = ["**/*.jpg"]
renditions = { thumb = "8x8,crop" }

[[rules]]
include = ["**/*.jpg"]
widths = [8, 16]
formats = ["jpeg"]
sizes = "16px"
"""


def generate(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imgpipe.toml").write_text(CONFIG)
    base = pyvips.Image.black(24, 16, bands=3)
    for i in range(count):
        path = root / "images" / f"d{i // 100:03d}" / f"img{i:05d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = [i % 256, (i // 256) % 256, (i * 7) % 256]
        (base + colour).cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    generate(args.dir, args.count)
    print(f"{args.count} sources in {args.dir / 'images'}")


if __name__ == "__main__":
    main()
