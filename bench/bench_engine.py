"""Engine benchmark (not a test): imgpipe against a plain pyvips script doing the same work.

    bash /work/shared/bench-photos.sh bench/.photos     # once: real photos (gitignored)
    python bench/bench_engine.py [--runs 5] [--photos DIR] [--each] [--skip-memory]

1. Speed: every photo at three widths in JPEG, WebP and AVIF (9 renditions a photo), through
   `open_source(...).render_all(...)` and through a plain script: `thumbnail_buffer` per width
   plus the same encoder settings. The methods alternate photo by photo so background load
   hits both alike; the figure is the sum over photos of each photo's median time.
2. Memory: a ~100-megapixel JPEG to a 1600 px rendition, in a fresh process each, peak RSS
   (VmHWM) as that process reports it. Must stay under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyvips

from imgpipe.engine import Rendition, open_source
from imgpipe.engine.encode import AVIF_EFFORT, PRESETS
from imgpipe.options import parse

HERE = Path(__file__).parent
WIDTHS = (480, 1024, 1600)
FORMATS = ("jpeg", "webp", "avif")
RECIPES = [parse(f"{w},format={f}") for w in WIDTHS for f in FORMATS]

# The plain script's settings: the engine's first guess for quality=medium (its search then
# moves from there, so imgpipe may encode more than once per rendition).
Q = {f: PRESETS[f]["medium"] for f in FORMATS}


def plain_pyvips(path: Path) -> int:
    data = path.read_bytes()
    total = 0
    for width in WIDTHS:
        # Sequential access: render once to memory, then encode three times.
        thumb = pyvips.Image.thumbnail_buffer(data, width, size="down").copy_memory()
        total += len(
            thumb.jpegsave_buffer(
                Q=Q["jpeg"],
                optimize_coding=True,
                trellis_quant=True,
                overshoot_deringing=True,
                optimize_scans=True,
                quant_table=3,
                interlace=True,
                keep="none",
            )
        )
        total += len(thumb.webpsave_buffer(Q=Q["webp"], smart_subsample=True, keep="none"))
        total += len(
            thumb.heifsave_buffer(compression="av1", Q=Q["avif"], effort=AVIF_EFFORT, keep="none")
        )
    return total


def imgpipe_render_all(path: Path) -> int:
    results = open_source(path).render_all(RECIPES)
    assert all(isinstance(r, Rendition) for r in results), results
    return sum(r.bytes for r in results)


def imgpipe_render_each(path: Path) -> int:
    return sum(open_source(path).render(recipe).bytes for recipe in RECIPES)


METHODS = {
    "plain pyvips (thumbnail per width)": plain_pyvips,
    "imgpipe render_all (one decode)": imgpipe_render_all,
    "imgpipe render (one decode each)": imgpipe_render_each,
}


def speed(photos: list[Path], runs: int, methods: list[str]) -> None:
    # Other processes share the CPUs, so methods alternate photo by photo (each photo sees
    # the same background load for every method), and each photo's time is its median over
    # the runs: one burst of load elsewhere then spoils one sample, not the comparison.
    times = {name: {p: [] for p in photos} for name in methods}
    sizes = {name: 0 for name in methods}
    for run in range(runs):
        for photo in photos:
            order = methods[run % len(methods) :] + methods[: run % len(methods)]
            for name in order:
                started = time.perf_counter()
                sizes[name] = METHODS[name](photo)
                times[name][photo].append(time.perf_counter() - started)
        print(
            f"  run {run + 1}/{runs}: "
            + ", ".join(f"{sum(t[-1] for t in times[n].values()):.2f}s" for n in methods),
            flush=True,
        )
    print(
        f"\n{len(photos)} photos x {len(RECIPES)} renditions ({', '.join(map(str, WIDTHS))} px;"
        f" {', '.join(FORMATS)}); sum over photos of each photo's median of {runs} runs:"
    )
    base = sum(statistics.median(t) for t in times[methods[0]].values())
    for name in methods:
        total = sum(statistics.median(t) for t in times[name].values())
        run_totals = [sum(t[i] for t in times[name].values()) for i in range(runs)]
        print(
            f"  {name:38s} {total:7.2f} s  ({total / base - 1:+.1%} vs plain)   run totals: "
            + " ".join(f"{t:.2f}" for t in run_totals)
        )
    print(
        "  per photo (median s): "
        + "; ".join(
            f"{p.name} " + "/".join(f"{statistics.median(times[n][p]):.2f}" for n in methods)
            for p in photos
        )
    )


_PEAK = """
import sys
from pathlib import Path
path = Path(sys.argv[1])
if sys.argv[2] == "imgpipe":
    from imgpipe.engine import open_source
    from imgpipe.options import parse
    out = open_source(path).render(parse("1600,format=jpeg"))
    size = (out.width, out.height)
else:
    import pyvips
    image = pyvips.Image.thumbnail_buffer(path.read_bytes(), 1600)
    out = image.jpegsave_buffer(Q=75)
    size = (image.width, image.height)
# VmHWM is this process's own peak: ru_maxrss would include the parent's pages at fork.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
print(peak_kb, size)
"""


def _peak_rss_mb(path: Path, who: str) -> tuple[float, str]:
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path), who], capture_output=True, text=True, check=True
    )
    peak_kb, size = run.stdout.strip().split(" ", 1)
    return int(peak_kb) / 1024, size


def big_jpeg(path: Path, width: int = 12000, height: int = 8333) -> Path:
    """A ~100-megapixel photo-like JPEG (smooth gradients plus grain), made once."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        code = f"""
import pyvips
xy = pyvips.Image.xyz({width}, {height})
x, y = xy[0], xy[1]
base = ((x / 47.0).sin() * 60 + (y / 31.0).cos() * 60 + 128)
grain = pyvips.Image.gaussnoise({width}, {height}, sigma=6)
rgb = (base + grain).bandjoin([x * 255 / {width} + grain, y * 255 / {height}]).cast("uchar")
rgb.copy(interpretation="srgb").jpegsave("{path}", Q=85)
"""
        subprocess.run([sys.executable, "-c", code], check=True)
    return path


def memory(runs: int) -> None:
    path = big_jpeg(HERE / ".out" / "100mp.jpg")
    header = pyvips.Image.new_from_file(str(path))
    print(
        f"\n{header.width}x{header.height} JPEG ({header.width * header.height / 1e6:.1f} MP, "
        f"{path.stat().st_size / 1e6:.1f} MB) -> 1600 px JPEG, peak RSS of a fresh process:"
    )
    for who in ("imgpipe", "plain"):
        peaks = [_peak_rss_mb(path, who) for _ in range(runs)]
        mb = [p for p, _ in peaks]
        print(
            f"  {who:8s} median {statistics.median(mb):6.1f} MB, max {max(mb):6.1f} MB"
            f"  (output {peaks[0][1]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=HERE / ".photos")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument(
        "--each",
        action="store_true",
        help="also time imgpipe's render() per rendition (a decode each)",
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    if not args.skip_speed:
        photos = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
        if args.limit:
            photos = photos[: args.limit]
        if not photos:
            sys.exit(
                f"no photos in {args.photos}: run bash /work/shared/bench-photos.sh {args.photos}"
            )
        methods = list(METHODS)[: 3 if args.each else 2]
        speed(photos, args.runs, methods)
    if not args.skip_memory:
        memory(max(1, min(args.runs, 3)))


if __name__ == "__main__":
    main()
