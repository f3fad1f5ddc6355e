"""Quality benchmarks (not tests): perceptual presets judged by an independent metric.

    python bench/bench_quality.py quality --set heldout,bench --presets medium \
        --widths 480,1200 --save rows.json   # medium (and `fixed` settings) by butteraugli,
                                              # one table per photo set
    python bench/bench_quality.py table --save rows.json   # those tables again
    python bench/bench_quality.py corrections --save rows.json  # encode.TARGET_SHIFT/SLOPE,
                                              # from the rows of --set calibration
    python bench/bench_quality.py eleventy    # imgpipe build vs eleventy-img: time, bytes, worst
    python bench/bench_quality.py calibrate --shard 0/2 & \
        python bench/bench_quality.py calibrate --shard 1/2; wait
    python bench/bench_quality.py calibrate   # refit metric.py against butteraugli (metric_fit)

Photos: `bash shared/bench-photos.sh bench/.photos` (Debian's desktop photos), and Debian
wallpaper packages fetched into bench/.out with apt-get download (all free licences: see each
package's /usr/share/doc/*/copyright). Three disjoint sets:
- calibration (CALIBRATION_PHOTOS from MATE, EXTRA_PHOTOS from ukui-wallpapers and
  lomiri-wallpapers): the metric's weights and the target corrections are fitted on these;
  designs are chosen by predicting each of them from a fit on the others (metric_fit.py);
- heldout (HELDOUT_PHOTOS: KDE Plasma's photos and one of MATE's): never fitted on nor used to
  choose, only to report;
- bench (BENCH_PHOTOS: the rest of MATE's photos): the same, a second fresh set.
(The example site's photos are downscaled copies of bench ones: never calibrate on them.) The
judge is butteraugli's 3-norm (`butteraugli_main` from Debian's libjxl-devtools), at each
rendition's own size against the same resize kept lossless. calibrate needs scipy
(`pip install -e '.[bench]'`). eleventy mode needs node and npm: it installs
@11ty/eleventy-img into a scratch dir (bench/eleventy/package.json; node_modules never enters
the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from imgpipe.engine import open_source  # noqa: E402
from imgpipe.options import parse  # noqa: E402

PHOTOS = BENCH / ".photos"
OUT = BENCH / ".out" / "quality"
# One scratch dir per checkout: two checkouts benchmarking at once must not share outputs.
SCRATCH = Path(tempfile.gettempdir()) / f"imgpipe-eleventy-bench-{REPO.name}"
BENCH_PHOTOS = (
    "Aqua",
    "Blinds",
    "Dune",
    "Elephants",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
)
CALIBRATION_PHOTOS = ("GreenTraditional", "Storm", "TwoWings", "Wood", "YellowFlower")
CALIBRATION = BENCH / ".out" / "calibration"  # git-ignored with the rest of .out
EXTRA_PACKAGES = ("ukui-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
EXTRA_PHOTOS = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Infinite-Sea_by_Aury88",
    "Kleiber_by_Lukas_Baubkus",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
)
# Held out from every fit: the photos of KDE Plasma's wallpapers (Autumn is a painting) and
# one of MATE's nature photos the benchmark set leaves out. Nothing is tuned on them: they
# stand for "photos nobody tuned to" (`quality --set heldout`).
HELDOUT_PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds")
HELDOUT = BENCH / ".out" / "heldout"
HELDOUT_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "FreshFlower",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
WIDTHS = (480, 960, 1600)
FORMATS = ("avif", "webp", "jpeg")
FIXED = {"jpeg": 80, "webp": 80, "avif": 50}  # the comparison settings


def photos(names: tuple[str, ...]) -> list[Path]:
    found = [PHOTOS / f"{n}.jpg" for n in names if (PHOTOS / f"{n}.jpg").is_file()]
    if not found:
        sys.exit(f"no photos: run `bash shared/bench-photos.sh {PHOTOS}` first")
    return found


def heldout_photos() -> list[Path]:
    """The held-out photos, fetched once (apt-get download, unpacked under bench/.out)."""
    raw = HELDOUT / "raw" / "usr" / "share"
    if not raw.is_dir():
        debs = HELDOUT / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", *HELDOUT_PACKAGES], cwd=debs, check=True)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(HELDOUT / "raw")], check=True)
    found = []
    for name in HELDOUT_PHOTOS:  # by name: Plasma's are all called 2560x1600.jpg
        plasma = raw / "wallpapers" / name / "contents" / "images" / "2560x1600.jpg"
        photo = HELDOUT / "photos" / f"{name}.jpg"
        if not photo.is_file():
            photo.parent.mkdir(parents=True, exist_ok=True)
            mate = raw / "backgrounds/mate/nature" / f"{name}.jpg"
            shutil.copy(plasma if plasma.is_file() else mate, photo)
        found.append(photo)
    return found


def photo_set(which: str, count: int) -> list[Path]:
    """bench: the benchmark photos; calibration: those the metric and its corrections are
    fitted on; heldout: photos no fit has seen."""
    if which == "heldout":
        chosen = heldout_photos()
    elif which == "calibration":
        chosen = photos(CALIBRATION_PHOTOS) + extra_photos()
    else:
        chosen = photos(BENCH_PHOTOS)
    return chosen[:count]


def butteraugli(reference: Path, data: bytes) -> float:
    """butteraugli_main's 3-norm of an encoded image against a lossless PNG reference."""
    import pyvips

    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        pyvips.Image.new_from_buffer(data, "").pngsave(tmp.name)
        out = subprocess.run(
            ["butteraugli_main", str(reference), tmp.name, "--pnorm", "3"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(re.search(r"3-norm: ([\d.]+)", out).group(1))


def reference_png(photo: Path, width: int | str, where: Path) -> Path:
    """imgpipe's own resize of `photo` to `width` (or a size like "320x320"), kept lossless
    (PNG at quality=high is lossless)."""
    path = where / f"{photo.stem}-{width}.png"
    if not path.exists():
        where.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            open_source(photo).render(parse(f"{width},format=png,quality=high,timeout=3600")).data
        )
    return path


def spread(scores: list[float]) -> tuple[float, float, float, float, float]:
    cut = statistics.quantiles(scores, n=20, method="inclusive")
    return cut[0], statistics.median(scores), cut[-1], cut[-1] - cut[0], max(scores)


def describe(name: str, total: int, scores: list[float]) -> str:
    p5, p50, p95, width, worst = spread(scores)
    return (
        f"{name:<22} bytes {total:>9,}  butteraugli p5 {p5:.2f} median {p50:.2f} "
        f"p95 {p95:.2f} spread {width:.2f} worst {worst:.2f}"
    )


# --- quality: presets vs fixed settings ---------------------------------------------------


def quality(
    jobs: dict[str, list[Path]], presets: tuple[str, ...], widths: tuple[int, ...], save: Path | None
) -> None:
    """Each preset and the fixed settings at `widths` x FORMATS on each set of photos in
    `jobs`, judged by butteraugli: per set and format its mean, spread (max - min) and worst,
    and per width the mean."""
    settings = {p: ({f: p for f in FORMATS} if p != "fixed" else FIXED) for p in presets}
    rows = []
    cost = encode_counter()
    for which, photo in ((w, p) for w, job in jobs.items() for p in job):
        for setting, by_format in settings.items():
            # No time limit: a busy machine must not turn a slow search into a failure.
            recipes = [
                parse(f"{w},format={f},quality={by_format[f]},timeout=3600")
                for w in widths
                for f in FORMATS
            ]
            before, cpu = dict(cost), time.process_time()  # butteraugli runs in another process
            made = open_source(photo).render_all(recipes)
            cost[which, setting, "cpu"] += time.process_time() - cpu
            cost[which, setting, "renditions"] += len(recipes)
            for key in ("encodes", "megapixels"):
                cost[which, setting, key] += cost[key] - before.get(key, 0)
            for recipe, r in zip(recipes, made, strict=True):
                ref = reference_png(photo, int(recipe.width), OUT / "ref")
                judged = butteraugli(ref, r.data)
                rows.append(
                    {
                        "set": which,
                        "photo": photo.stem,
                        "setting": setting,
                        "format": recipe.format,
                        "width": int(recipe.width),
                        "bytes": r.bytes,
                        "q": r.encoder_quality,
                        "score": r.score,
                        "butteraugli": judged,
                    }
                )
                print(
                    f"  {photo.stem} {recipe} q={r.encoder_quality} score={r.score} "
                    f"{r.bytes} B butteraugli {judged:.3f}",
                    flush=True,
                )
    if save:
        save.write_text(json.dumps(rows, indent=1))
    table(rows)
    print(f"\nCost of the renditions (probes included), load average {load()}:")
    for which, setting in dict.fromkeys(k[:2] for k in cost if len(k) == 3):
        n = cost[which, setting, "renditions"]
        print(
            f"  {which} {setting}: {cost[which, setting, 'encodes'] / n:.2f} encodes and "
            f"{cost[which, setting, 'megapixels'] / n:.3f} encoded megapixels per rendition, "
            f"CPU {cost[which, setting, 'cpu'] / n:.2f} s per rendition"
        )
    searches(cost)


def encode_counter() -> dict:
    """Counts optimise.encode's calls and pixels under (set, setting) as quality() runs them:
    a dict that quality() also adds its CPU seconds and rendition counts to."""
    from collections import Counter

    from imgpipe.engine import optimise

    cost: Counter = Counter()
    real = optimise.encode

    def counted(image, encoding, *args, **kwargs):  # type: ignore[no-untyped-def]
        cost["encodes"] += 1
        cost["megapixels"] += image.width * image.height / 1e6
        return real(image, encoding, *args, **kwargs)

    optimise.encode = counted
    searched = optimise.search

    def search(final, encoding, guess, deadline, checks=3):  # type: ignore[no-untyped-def]
        found, encoded = searched(final, encoding, guess, deadline, checks)
        size = "probe" if final.width <= optimise.PROBE_BOX else f"{final.width // 100 * 100}+"
        trials = len(found.trials)
        for key, n in (("searches", 1), ("trials", trials), ("first", trials == 1)):
            cost["search", encoding.format, size, key] += n
        return found, encoded

    optimise.search = search
    return cost


def searches(cost: dict) -> None:
    """Per format and width (by hundreds): searches, encodes per search, and how many ended at
    their first encode (the guess met the target)."""
    print("\nSearches | format | width | searches | encodes per search | first encode |")
    for fmt, size in sorted(dict.fromkeys(k[1:3] for k in cost if k[0] == "search")):
        n = cost["search", fmt, size, "searches"]
        print(
            f"  | {fmt} | {size} | {n} | {cost['search', fmt, size, 'trials'] / n:.2f} | "
            f"{cost['search', fmt, size, 'first'] / n:.0%} |"
        )


def table(every: list[dict]) -> None:
    for which in dict.fromkeys(r.get("set", "") for r in every):
        rows = [r for r in every if r.get("set", "") == which]
        photos_ = sorted({r["photo"] for r in rows})
        print(
            f"\n{which or 'one'} set, {len(photos_)} photos x {sorted({r['width'] for r in rows})} px x "
            f"{FORMATS}, butteraugli 3-norm (lower is better): {', '.join(photos_)}"
        )
        table_of(rows)


def table_of(rows: list[dict]) -> None:
    print("| setting | format | mean | spread (max-min) | worst | bytes | mean by width |")
    print("|---|---|---|---|---|---|---|")
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for fmt in FORMATS:
            mine = [r for r in rows if r["setting"] == setting and r["format"] == fmt]
            b = [r["butteraugli"] for r in mine]
            by_width = {
                w: statistics.mean(r["butteraugli"] for r in mine if r["width"] == w)
                for w in dict.fromkeys(r["width"] for r in mine)
            }
            print(
                f"| {setting} | {fmt} | {statistics.mean(b):.2f} | {max(b) - min(b):.2f} | "
                f"{max(b):.2f} | {sum(r['bytes'] for r in mine):,} | "
                + ", ".join(f"{w}: {m:.2f}" for w, m in by_width.items())
                + " |"
            )


def corrections(rows: list[dict], goal: float = 1.2) -> None:
    """encode.TARGET_SHIFT / TARGET_SLOPE that move the medium preset's mean butteraugli per
    format and width to `goal`, from rows of `quality --presets medium --save` (made with the
    corrections then in force). One score point is about 0.1 butteraugli (metric.score_of)."""
    import numpy as np

    from imgpipe.engine.encode import CORRECTED_OCTAVES, GUESS_WIDTH, TARGET_SHIFT, TARGET_SLOPE

    shift, slope = dict(TARGET_SHIFT), dict(TARGET_SLOPE)
    for fmt in FORMATS:
        mine = [r for r in rows if r["setting"] == "medium" and r["format"] == fmt]
        octaves = np.clip(
            np.log2(np.array([r["width"] for r in mine]) / GUESS_WIDTH), *CORRECTED_OCTAVES
        )
        wanted = 10 * (np.array([r["butteraugli"] for r in mine]) - goal)
        c, a = np.polyfit(octaves, wanted, 1) if len(set(octaves)) > 1 else (0.0, wanted.mean())
        shift[fmt] = round(shift[fmt] + float(a), 2)
        slope[fmt] = round(slope[fmt] + float(c), 2)
    print(f"TARGET_SHIFT: dict[str, float] = {shift}")
    print(f"TARGET_SLOPE: dict[str, float] = {slope}")


# --- eleventy: the same job in both tools ---------------------------------------------------

JOB_CONFIG = f"""source = "photos"
output = "public"
cache_dir = "cache"

[[rules]]
include = ["*.jpg"]
widths = {list(WIDTHS)}
formats = {json.dumps(list(FORMATS))}
options = "timeout=3600"
"""


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child) and stdout of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, out


def eleventy(job: list[Path], runs: int) -> None:
    """The same job in imgpipe and eleventy-img, side by side: wall and CPU time, per format
    bytes and butteraugli (mean, worst), and the fixed quality that imgpipe's targeting beats."""
    print(f"{len(job)} photos x {WIDTHS} x {FORMATS}; load average {load()}", flush=True)
    if not (SCRATCH / "node_modules" / "@11ty" / "eleventy-img").is_dir():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        shutil.copy(BENCH / "eleventy" / "package.json", SCRATCH)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=SCRATCH, check=True)
    shutil.copy(BENCH / "eleventy" / "run.mjs", SCRATCH)
    site = OUT / "job"
    shutil.rmtree(site, ignore_errors=True)
    (site / "photos").mkdir(parents=True)
    for p in job:
        shutil.copy(p, site / "photos" / p.name)  # a build follows no link out of its tree
    (site / "imgpipe.toml").write_text(JOB_CONFIG)
    widths = ",".join(map(str, WIDTHS))
    times: dict[str, list[tuple[float, float]]] = {"imgpipe": [], "eleventy-img": []}
    listing = ""
    for _ in range(runs):  # interleaved, so the machine's load hits both alike
        for what in ("public", "cache"):
            shutil.rmtree(site / what, ignore_errors=True)
        wall, cpu, _ = timed(
            [sys.executable, str(BENCH / "imgpipe_cli.py"), "build", "--no-progress"], cwd=site
        )
        times["imgpipe"].append((wall, cpu))
        out = SCRATCH / "out"
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu, listing = timed(
            ["node", "run.mjs", "build", str(out), widths, *map(str, job)], cwd=SCRATCH
        )
        times["eleventy-img"].append((wall, cpu))
    for tool, runs_ in times.items():
        walls = [w for w, _ in runs_]
        print(
            f"{tool:<13} wall median {statistics.median(walls):.2f} s of "
            f"{[round(w, 2) for w in walls]}; CPU (user+sys) median "
            f"{statistics.median(c for _, c in runs_):.2f} s"
        )
    ratio = statistics.median(w for w, _ in times["imgpipe"]) / statistics.median(
        w for w, _ in times["eleventy-img"]
    )
    print(f"imgpipe / eleventy-img wall time: {ratio:.2f} (goal <= 0.5); load {load()}")

    # Bytes and butteraugli, each tool against its own resize kept lossless.
    refs = SCRATCH / "refs"
    shutil.rmtree(refs, ignore_errors=True)
    refs.mkdir()
    subprocess.run(
        ["node", "run.mjs", "reference", str(refs), widths, *map(str, job)], cwd=SCRATCH, check=True
    )
    theirs = [
        (Path(o["photo"]).stem, o["width"], Path(o["path"]).read_bytes())
        for o in json.loads(listing)["outputs"]
    ]
    manifest = json.loads((site / "public" / "imgpipe-manifest.json").read_text())
    ours = [
        (Path(rel).stem, r["width"], (site / "public" / r["path"]).read_bytes())
        for rel, entry in manifest["sources"].items()
        for r in entry["renditions"].values()
    ]
    by_photo = {p.stem: p for p in job}
    judged: dict[str, dict[str, list[tuple[float, int]]]] = {}
    for tool, outputs, ref_of in (
        ("imgpipe", ours, lambda s, w: reference_png(by_photo[s], w, OUT / "ref-job")),
        ("eleventy-img", theirs, lambda s, w: refs / f"{s}-{w}.png"),
    ):
        judged[tool] = {fmt: [] for fmt in FORMATS}
        for stem, width, data in outputs:
            judged[tool][kind(data)].append((butteraugli(ref_of(stem, width), data), len(data)))
    side_by_side(judged)
    equal_looks(
        job,
        {fmt: max(s for s, _ in judged["eleventy-img"][fmt]) for fmt in FORMATS},
        {fmt: sum(b for _, b in judged["eleventy-img"][fmt]) for fmt in FORMATS},
    )
    kept: dict[str, set[tuple[str, int]]] = {fmt: set() for fmt in FORMATS}
    for stem, width, data in ours:
        kept[kind(data)].add((stem, width))
    fixed_comparison(
        job,
        {fmt: max(s for s, _ in judged["imgpipe"][fmt]) for fmt in FORMATS},
        {fmt: sum(b for _, b in judged["imgpipe"][fmt]) for fmt in FORMATS},
        kept,
    )
    print(f"load average at the end {load()}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def side_by_side(judged: dict[str, dict[str, list[tuple[float, int]]]]) -> None:
    """Per format: bytes of both tools and their ratio, butteraugli mean and worst of both."""
    ours, theirs = judged["imgpipe"], judged["eleventy-img"]
    print(
        "\n| format | files | imgpipe bytes | eleventy bytes | ratio | imgpipe mean / worst "
        "| eleventy mean / worst | worst <= eleventy's |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for fmt in FORMATS:
        a, b = ours[fmt], theirs[fmt]
        ba, bb = sum(n for _, n in a), sum(n for _, n in b)
        wa, wb = max(s for s, _ in a), max(s for s, _ in b)
        print(
            f"| {fmt} | {len(a)} / {len(b)} | {ba:,} | {bb:,} | {ba / bb:.2f} | "
            f"{statistics.mean(s for s, _ in a):.2f} / {wa:.2f} | "
            f"{statistics.mean(s for s, _ in b):.2f} / {wb:.2f} | {'yes' if wa <= wb else 'NO'} |"
        )
    total_a = sum(n for fmt in FORMATS for _, n in ours[fmt])
    total_b = sum(n for fmt in FORMATS for _, n in theirs[fmt])
    print(f"| all | | {total_a:,} | {total_b:,} | {total_a / total_b:.2f} (goal <= 0.85) | | | |")


def fixed_comparison(
    job: list[Path],
    worst: dict[str, float],
    ours: dict[str, int],
    kept: dict[str, set[tuple[str, int]]],
) -> None:
    """Per format, the lowest single fixed encoder quality whose worst butteraugli on the same
    photos and widths is no worse than imgpipe's worst, and imgpipe's bytes against its bytes:
    what choosing a quality per image buys over one number for all (found by bisection). Both
    over the (photo, width) pairs imgpipe wrote (`kept`): a format that lost to the one below
    it at some photo is not written there."""
    print(
        "\n| format | imgpipe worst | fixed q reaching it | its worst | its bytes "
        "| imgpipe bytes | imgpipe / fixed |"
    )
    print("|---|---|---|---|---|---|---|")
    for fmt in FORMATS:
        low, high = FIXED_RANGE[fmt]
        tried: dict[int, tuple[float, int]] = {}
        while high - low > 1:  # worst(low) > goal >= worst(high), as far as is known
            q = (low + high) // 2
            tried[q] = fixed_run(job, fmt, q, only=kept[fmt])
            if tried[q][0] <= worst[fmt]:
                high = q
            else:
                low = q
        found = tried.get(high) or fixed_run(job, fmt, high, only=kept[fmt])
        print(
            f"| {fmt} | {worst[fmt]:.2f} | {high} | {found[0]:.2f} | {found[1]:,} | "
            f"{ours[fmt]:,} | {ours[fmt] / found[1]:.2f} |",
            flush=True,
        )


# Where the fixed-quality bisection looks (its top is assumed to reach any worst imgpipe has).
FIXED_RANGE = {"jpeg": (40, 96), "webp": (40, 96), "avif": (25, 90)}


def equal_looks(job: list[Path], worst: dict[str, float], theirs: dict[str, int]) -> None:
    """Fewer bytes at equal looks: per format, imgpipe with the medium preset's target moved
    (in half points of the metric's score, 10 to a butteraugli unit) to the lowest whose worst
    butteraugli on the same photos and widths is no worse than eleventy-img's worst, and its
    bytes against eleventy-img's (found by bisection; the default build is the table above)."""
    from imgpipe.engine import encode

    medium = encode.TARGETS["medium"]
    print(
        "\n| format | eleventy worst | imgpipe target (medium's) | imgpipe mean / worst there "
        "| imgpipe bytes | eleventy bytes | imgpipe / eleventy |"
    )
    print("|---|---|---|---|---|---|---|")
    try:
        for fmt in FORMATS:
            low, high = medium - 8.0, medium + 8.0  # worst(low) > goal >= worst(high)
            tried: dict[float, tuple[float, int, float]] = {}
            while high - low > 0.5:
                encode.TARGETS["medium"] = target = round(low + high) / 2
                tried[target] = fixed_run(job, fmt, "medium", with_mean=True)
                if tried[target][0] <= worst[fmt]:
                    high = target
                else:
                    low = target
            encode.TARGETS["medium"] = high
            found = tried.get(high) or fixed_run(job, fmt, "medium", with_mean=True)
            print(
                f"| {fmt} | {worst[fmt]:.2f} | {high:g} ({medium:g}) | {found[2]:.2f} / "
                f"{found[0]:.2f} | {found[1]:,} | {theirs[fmt]:,} | {found[1] / theirs[fmt]:.2f} |",
                flush=True,
            )
    finally:
        encode.TARGETS["medium"] = medium


def fixed_run(
    job: list[Path],
    fmt: str,
    q: int | str,
    with_mean: bool = False,
    only: set[tuple[str, int]] | None = None,
) -> tuple:
    """(worst butteraugli, total bytes[, mean butteraugli]) of quality=q in `fmt` at WIDTHS
    on `job`, or on the (photo, width) pairs `only`."""
    scores, total = [], 0
    for photo in job:
        recipes = [parse(f"{w},format={fmt},quality={q},timeout=3600") for w in WIDTHS]
        for recipe, r in zip(recipes, open_source(photo).render_all(recipes), strict=True):
            if only is not None and (photo.stem, r.width) not in only:
                continue
            ref = reference_png(photo, int(recipe.width), OUT / "ref-job")
            scores.append(butteraugli(ref, r.data))
            total += r.bytes
    print(f"  {fmt} quality={q}: worst {max(scores):.2f}, {total:,} B", flush=True)
    return (max(scores), total, statistics.mean(scores)) if with_mean else (max(scores), total)


def kind(data: bytes) -> str:
    """An encoded file's format, from its first bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return "webp" if data[8:12] == b"WEBP" else "avif"


# --- calibrate: refit the metric against butteraugli ----------------------------------------

# Around what the presets use (medium lands between the middle ones), at the widths the
# quality table reports.
QUALITIES = {
    "jpeg": (50, 62, 72, 82, 92),
    "webp": (50, 62, 72, 82, 92),
    "avif": (30, 42, 52, 62, 74),
}
CALIBRATION_WIDTHS = (480, 1200)


def extra_photos() -> list[Path]:
    """The wallpapers that are photos (the rest are drawings), fetched once."""
    backgrounds = CALIBRATION / "raw" / "usr" / "share" / "backgrounds"
    if not backgrounds.is_dir():
        debs = CALIBRATION / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", *EXTRA_PACKAGES], cwd=debs, check=True)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(CALIBRATION / "raw")], check=True)
    return [backgrounds / f"{name}.jpg" for name in EXTRA_PHOTOS]


def calibration_rows(photo: Path) -> dict:
    """One photo's calibration rows, kept in bench/.out/calibration/rows: per encoding (3
    widths x 3 formats x 5 qualities with imgpipe's encoders) the metric's features, the
    original's descriptors and butteraugli's 3-norm."""
    import numpy as np
    import pyvips

    from imgpipe.engine import metric
    from imgpipe.engine.encode import Encoding, encode

    cached = CALIBRATION / "rows" / f"{photo.stem}.npz"
    if cached.is_file():
        return dict(np.load(cached))
    rows: dict[str, list] = {k: [] for k in ("width", "format", "q", "features", "desc", "ba")}
    for width in CALIBRATION_WIDTHS:
        image = pyvips.Image.new_from_buffer(
            reference_png(photo, width, OUT / "ref").read_bytes(), ""
        ).copy_memory()
        reference = metric.Reference(image)
        for fmt, qualities in QUALITIES.items():
            for q in qualities:
                data = encode(image, Encoding(fmt, q, q))
                judged = butteraugli(OUT / "ref" / f"{photo.stem}-{width}.png", data)
                features = reference.features(pyvips.Image.new_from_buffer(data, ""))[0]
                for key, value in zip(
                    rows, (width, fmt, q, features, reference.descriptors(), judged), strict=True
                ):
                    rows[key].append(value)
                print(f"  {photo.stem} {width} {fmt} q{q}: butteraugli {judged:.3f}", flush=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    found = {k: np.array(v) for k, v in rows.items()}
    np.savez(cached, **found)
    return found


def calibrate(job: list[Path], shard: tuple[int, int]) -> None:
    """Collect the calibration rows of `job` (this shard of it: run shards in parallel, then
    once more without to fit), then fit metric.py's constants (metric_fit.py)."""
    import metric_fit

    index, count = shard
    data = [(p.stem, calibration_rows(p)) for p in job[index::count]]
    if count == 1:
        metric_fit.report(data)
        metric_fit.constants(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which", choices=("quality", "eleventy", "calibrate", "table", "corrections")
    )
    parser.add_argument(
        "--set",
        default="bench",
        help="quality: which photos, comma-separated sets of bench, calibration, heldout "
        "(disjoint; eleventy: one set)",
    )
    parser.add_argument(
        "--widths", default=",".join(map(str, WIDTHS)), help="quality: comma-separated widths"
    )
    parser.add_argument("--runs", type=int, default=3, help="eleventy: interleaved runs")
    parser.add_argument("--photos", type=int, default=100, help="use the first N photos")
    parser.add_argument(
        "--presets",
        default="medium,fixed",
        help="quality: comma-separated presets, and `fixed` for FIXED's encoder settings",
    )
    parser.add_argument("--shard", default="0/1", help="calibrate: collect every Nth photo from K")
    parser.add_argument(
        "--save", type=Path, help="calibrate: keep the data set (.npz); quality: the rows (.json)"
    )
    args = parser.parse_args()
    if shutil.which("butteraugli_main") is None:
        sys.exit("butteraugli_main not found: apt-get install -y libjxl-devtools")
    if args.which == "table":  # the quality table again, from rows saved with --save
        table(json.loads(args.save.read_text()))
    elif args.which == "corrections":  # the target corrections, from calibration rows only
        rows = json.loads(args.save.read_text())
        corrections([r for r in rows if r.get("set", "calibration") == "calibration"])
    elif args.which == "quality":
        widths = tuple(int(w) for w in args.widths.split(","))
        jobs = {which: photo_set(which, args.photos) for which in args.set.split(",")}
        quality(jobs, tuple(args.presets.split(",")), widths, args.save)
    elif args.which == "eleventy":
        eleventy(photo_set(args.set, args.photos), args.runs)
    else:
        index, count = (int(n) for n in args.shard.split("/"))
        calibrate(photo_set("calibration", args.photos), (index, count))


if __name__ == "__main__":
    main()
