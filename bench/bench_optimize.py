"""One-rendition benchmark (not a test): `imgpipe.optimize()` against a plain pyvips script
doing the same resize and encode (issue 11.4: within 1.10x).

    bash /work/shared/bench-photos.sh bench/.photos     # once: real photos (gitignored)
    python bench/bench_optimize.py [--runs 5] [--photos DIR] [--widths 480,1600]
                                   [--formats jpeg,webp] [--limit N]

Per photo, width and format: `imgpipe.optimize(path, "W,format=F,quality=80")` and
`pyvips.Image.thumbnail(path, W)` then `jpegsave_buffer`/`webpsave_buffer` with the encoder
settings imgpipe passes (engine/encode.py). Both start from the file name and end with the
bytes. The two alternate case by case, so background load hits both alike; a case's figure is
its median over the runs, and a format's ratio is the sum of its cases' medians. Wall time
and CPU time (all threads of this process) are both reported: on a shared machine other
processes inflate wall time, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pyvips

import imgpipe
from imgpipe.engine.encode import _MOZJPEG

HERE = Path(__file__).parent
QUALITY = 80


def plain(path: Path, width: int, fmt: str) -> bytes:
    image = pyvips.Image.thumbnail(str(path), width, height=100_000, size="down")
    if fmt == "jpeg":
        return image.jpegsave_buffer(Q=QUALITY, keep="none", **_MOZJPEG)
    return image.webpsave_buffer(Q=QUALITY, smart_subsample=True, keep="none")


def ours(path: Path, width: int, fmt: str) -> bytes:
    return imgpipe.optimize(path, f"{width},format={fmt},quality={QUALITY}").data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=HERE / ".photos")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--widths", default="480,1600")
    parser.add_argument("--formats", default="jpeg,webp")
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    photos = photos[: args.limit] if args.limit else photos
    if not photos:
        sys.exit(f"no photos in {args.photos}: run bash /work/shared/bench-photos.sh {args.photos}")
    widths = [int(w) for w in args.widths.split(",")]
    formats = args.formats.split(",")
    print(
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {len(photos)} photos,"
        f" widths {widths}, quality={QUALITY}, median of {args.runs} runs per case"
    )
    cases = [(p, w, f) for p in photos for w in widths for f in formats]
    times: dict[tuple, dict[str, list[float]]] = {c: {"plain": [], "imgpipe": []} for c in cases}
    cpu: dict[tuple, dict[str, list[float]]] = {c: {"plain": [], "imgpipe": []} for c in cases}
    methods = {"plain": plain, "imgpipe": ours}
    ours(*cases[0])  # load the engine (and its imports) before timing
    for run in range(args.runs):
        for case in cases:
            order = ["plain", "imgpipe"] if run % 2 == 0 else ["imgpipe", "plain"]
            for name in order:
                started, started_cpu = time.perf_counter(), time.process_time()
                methods[name](*case)
                times[case][name].append(time.perf_counter() - started)
                cpu[case][name].append(time.process_time() - started_cpu)
    for fmt in formats:
        for width in widths + [None]:
            chosen = [c for c in cases if c[2] == fmt and (width is None or c[1] == width)]
            total = {n: sum(statistics.median(times[c][n]) for c in chosen) for n in methods}
            used = {n: sum(statistics.median(cpu[c][n]) for c in chosen) for n in methods}
            label = f"{width} px" if width else "all widths"
            print(
                f"  {fmt:5s} {label:10s} wall: plain {total['plain']:6.2f} s  imgpipe "
                f"{total['imgpipe']:6.2f} s  ratio {total['imgpipe'] / total['plain']:.2f}   "
                f"CPU: plain {used['plain']:6.2f} s  imgpipe {used['imgpipe']:6.2f} s  "
                f"ratio {used['imgpipe'] / used['plain']:.2f}"
            )


if __name__ == "__main__":
    main()
