"""Build benchmarks (not tests): figures for the build issue, as medians of a few runs.

    python bench/bench_build.py noop     # no-op build of 10,000 generated sources
    python bench/bench_build.py jobs     # photos: clean build with jobs=1 vs jobs=2
    python bench/bench_build.py plain    # photos: clean build vs a plain pyvips script
    python bench/bench_build.py plain --fixed   # the same with quality=75, the script's setting

Photos come from `bash shared/bench-photos.sh bench/.photos` (real 1–18 MP JPEGs). Every run
is a separate process (`imgpipe build` via the CLI), so figures include interpreter start-up.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / ".out"
PHOTOS = BENCH / ".photos"

WIDTHS = (480, 960, 1600)
FORMATS = ("webp", "jpeg")
PHOTO_CONFIG = f"""source = "{PHOTOS}"
output = "public"
cache_dir = "cache"
jobs = {{jobs}}

[[rules]]
include = ["*.jpg"]
renditions = {{{{ thumb = "240x240,crop,{{quality}}" }}}}

[[rules]]
include = ["*.jpg"]
widths = {list(WIDTHS)}
formats = {list(FORMATS)!r}
options = "{{quality}}"
""".replace("'", '"')
# `--fixed`: the plain script's encoder setting instead of the perceptual search, so the two
# do exactly the same encodes and the difference is imgpipe's own overhead.
FIXED, PRESET = "quality=75", "quality=medium"

# The same renditions with nothing but pyvips: shrink-on-load thumbnails and the engine's
# encoder settings (imgpipe/engine/encode.py), written with plain file writes.
PLAIN_SCRIPT = f"""
import sys, pathlib, pyvips
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
moz = dict(optimize_coding=True, trellis_quant=True, overshoot_deringing=True,
           optimize_scans=True, quant_table=3, interlace=True)
for path in sorted(src.glob("*.jpg")):
    thumb = pyvips.Image.thumbnail(str(path), 240, height=240, crop="centre")
    (out / f"{{path.stem}}-thumb.jpg").write_bytes(thumb.jpegsave_buffer(Q=75, keep="none", **moz))
    for w in {WIDTHS}:
        im = pyvips.Image.thumbnail(str(path), w, height=100000, size="down").copy_memory()
        (out / f"{{path.stem}}-{{w}}.webp").write_bytes(
            im.webpsave_buffer(Q=75, smart_subsample=True, keep="none"))
        (out / f"{{path.stem}}-{{w}}.jpg").write_bytes(im.jpegsave_buffer(Q=75, keep="none", **moz))
"""

# The same, decoding each photo once (the largest size, then smaller ones from it), which is
# what imgpipe's engine does: the fairer baseline.
PLAIN_ONE_DECODE = (
    PLAIN_SCRIPT.replace(
        """    thumb = pyvips.Image.thumbnail(str(path), 240, height=240, crop="centre")""",
        """    big = pyvips.Image.thumbnail(str(path), max(WIDTHS), height=100000, size="down")
    big = big.copy_memory()
    thumb = big.thumbnail_image(240, height=240, crop="centre")""",
    )
    .replace(
        """        im = pyvips.Image.thumbnail(str(path), w, height=100000, size="down").copy_memory()""",
        """        im = big.thumbnail_image(w, height=100000, size="down").copy_memory()""",
    )
    .replace("import sys, pathlib, pyvips", f"import sys, pathlib, pyvips\nWIDTHS = {WIDTHS}")
)


CPU: dict[str, list[float]] = {}  # CPU seconds (user + sys) of each run, by benchmark line


def run(cmd: list[str], cwd: Path | None = None, cpu_key: str | None = None) -> float:
    """Wall seconds of one child process; its CPU seconds go to CPU[cpu_key]. CPU time is the
    figure to trust on a shared machine: other processes' load inflates wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        cmd,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu_key:
        CPU.setdefault(cpu_key, []).append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        )
    return wall


def imgpipe(cwd: Path, *args: str, cpu_key: str | None = None) -> float:
    return run([sys.executable, str(BENCH / "imgpipe_cli.py"), *args], cwd, cpu_key)


def median(runs: list[float], cpu_key: str | None = None) -> str:
    text = f"median {statistics.median(runs):.2f} s of {[round(r, 2) for r in runs]}"
    if cpu_key in CPU:
        text += f"; CPU median {statistics.median(CPU[cpu_key]):.2f} s"
    return text


def noop(runs: int) -> None:
    site = OUT / "noop"
    if not (site / "images").is_dir():
        subprocess.run([sys.executable, str(BENCH / "gen_sources.py"), str(site)], check=True)
    if not (site / "public").is_dir():
        print("first build (slow: 30,000 renditions)...", flush=True)
        imgpipe(site, "build", "--no-progress")
    imgpipe(site, "build", "--no-progress")  # settle the stamp after any change
    times = [imgpipe(site, "build", "--no-progress", cpu_key="noop") for _ in range(runs)]
    print(f"no-op build, 10,000 sources, whole process: {median(times, 'noop')}")
    # A touch of every source defeats the fast path: the full plan/verify path, no encodes.
    for f in (site / "images").rglob("*.jpg"):
        f.touch()
    times = [imgpipe(site, "build", "--no-progress")]
    times += [_touch_and_build(site) for _ in range(runs - 1)]
    print(f"no-op build after touching every source (stat cache miss, rehash): {median(times)}")


def _touch_and_build(site: Path) -> float:
    for f in (site / "images").rglob("*.jpg"):
        f.touch()
    return imgpipe(site, "build", "--no-progress")


def photo_site(jobs: int, fixed: bool = False) -> Path:
    if not PHOTOS.is_dir():
        sys.exit(f"no photos: run `bash shared/bench-photos.sh {PHOTOS}` first")
    site = OUT / f"photos-j{jobs}{'-fixed' if fixed else ''}"
    site.mkdir(parents=True, exist_ok=True)
    (site / "imgpipe.toml").write_text(
        PHOTO_CONFIG.format(jobs=jobs, quality=FIXED if fixed else PRESET)
    )
    return site


def clean_build(site: Path, cpu_key: str | None = None) -> float:
    shutil.rmtree(site / "public", ignore_errors=True)
    shutil.rmtree(site / "cache", ignore_errors=True)
    return imgpipe(site, "build", "--no-progress", cpu_key=cpu_key)


def idle_fraction(seconds: float = 1.0) -> float:
    """Share of all cores idle over `seconds` (/proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(limit: float) -> None:
    """A speed-up needs free cores: wait (up to `limit` s) until others leave 90% idle."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and idle_fraction() < 0.9:
        pass


def jobs(runs: int, quiet: float = 0) -> None:
    one, two = [], []
    for _ in range(runs):  # interleaved, so machine load hits both alike
        wait_for_quiet(quiet)
        one.append(clean_build(photo_site(1), "j1"))
        wait_for_quiet(quiet)
        two.append(clean_build(photo_site(2), "j2"))
    print(f"photos, jobs=1: {median(one, 'j1')}")
    print(f"photos, jobs=2: {median(two, 'j2')}")
    print(f"speed-up: {statistics.median(one) / statistics.median(two):.2f}x")


def plain(runs: int, fixed: bool = False) -> None:
    site = photo_site(1, fixed)
    out = OUT / "plain"
    times: dict[str, list[float]] = {
        "imgpipe build, jobs=1": [],
        "plain pyvips script": [],
        "plain script, one decode": [],
    }
    for _ in range(runs):  # interleaved, so machine load hits all alike
        times["imgpipe build, jobs=1"].append(clean_build(site, "imgpipe build, jobs=1"))
        for name, script in (
            ("plain pyvips script", PLAIN_SCRIPT),
            ("plain script, one decode", PLAIN_ONE_DECODE),
        ):
            shutil.rmtree(out, ignore_errors=True)
            times[name].append(
                run([sys.executable, "-c", script, str(PHOTOS), str(out)], cpu_key=name)
            )
    for name, runs_ in times.items():
        print(f"{name:<26} {median(runs_, name)}")
    for what, figures in (("wall", times), ("CPU", CPU)):
        ours = statistics.median(figures["imgpipe build, jobs=1"])
        for name in list(times)[1:]:
            print(f"{what}: imgpipe / {name}: {ours / statistics.median(figures[name]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("noop", "jobs", "plain"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="plain: quality=75 as the script uses, instead of the presets",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="jobs: before each run, wait up to this long for idle cores",
    )
    args = parser.parse_args()
    if args.which == "jobs":
        jobs(args.runs, args.quiet)
    elif args.which == "plain":
        plain(args.runs, args.fixed)
    else:
        noop(args.runs)


if __name__ == "__main__":
    main()
