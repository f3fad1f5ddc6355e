"""Our butteraugli (imgpipe/engine/butteraugli.py) against butteraugli_main (not a test).

    python bench/bench_butteraugli.py [--photos 6] [--save bench/.out/butteraugli.json]
    python bench/bench_butteraugli.py --table bench/.out/butteraugli.json   # the tables again
    python bench/bench_butteraugli.py --window [--photos 100]  # judge.py's windows and weight
    python bench/bench_butteraugli.py --speed [--old OLD.py]   # CPU per call, against OLD.py

Pairs: the first N *calibration* photos (bench_quality.photo_set; never the heldout or bench
sets), each rendered by imgpipe as a lossless PNG at the 320 px box of the quality probe, at
480 and at 1200 px wide, then encoded with imgpipe's encoders (encode.Encoding(fmt, q, q)) as
JPEG, WebP and AVIF at 3 qualities around the medium preset's (butteraugli ~0.8-1.8). Per pair:
butteraugli_main's max and 3-norm (`--pnorm 3`), ours, and the CPU time of each (ours: this
process, from decoded pixels; butteraugli_main: the child's user+sys, PNG decoding included).

Summary: mean and max relative error of the 3-norm (and of the max), correlation, CPU time
per call per size. Then the proxy question (issue 13.1): the fitted metric's error
e = butteraugli - metric.Reference(ref).distance(enc, fmt) per photo, format and quality, and
how well the 320 px probe's error (ours, as the engine would compute it) predicts e at 480 and
1200 px: the sd of e alone against the sd of e - e_probe.

--window: what engine/judge.py rests on. Per photo of the calibration, heldout and bench
sets and per format, the medium rendition at 1200 px as a build makes it; its whole-image error
e (as above, butteraugli_main) against the error in a WINDOW-pixel window (ours): where the
metric's error map is worst, centred, and the mean of both (judge's choice). Per choice, the
slope of e on it (no intercept) fitted on the calibration photos, and on every set the sd of
what a correction by that slope leaves.

--speed: CPU time (this process, pyvips on 1 thread) of one butteraugli.distance, median of 5
after a warm-up, at 320x240, 480x320 and 1200x800 (centre crops of SPEED_PHOTOS in
/work/photos, encoded as JPEG q60 and AVIF q50), and of one more distorted image against a
Reference built once. With --old (a copy of an earlier butteraugli.py), the same for it and
the largest relative difference of the 3-norm and of the max.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvips
from bench_quality import FORMATS, OUT, load, photo_set, reference_png

from imgpipe.engine import butteraugli, metric
from imgpipe.engine.encode import Encoding, encode

SIZES = ("320x320", "480", "1200")  # the probe's box (optimise.PROBE_BOX), then widths
QUALITIES = {"jpeg": (65, 78, 90), "webp": (65, 78, 90), "avif": (40, 52, 64)}


def butteraugli_main(reference: Path, distorted: Path) -> tuple[float, float, float]:
    """(max, 3-norm, CPU seconds) as butteraugli_main prints and spends them."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["butteraugli_main", str(reference), str(distorted), "--pnorm", "3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return float(out.split()[0]), float(re.search(r"3-norm: ([\d.]+)", out).group(1)), cpu


def pair_rows(photos: list[Path]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        distorted = Path(tmp) / "distorted.png"
        for photo in photos:
            for size in SIZES:
                ref_path = reference_png(photo, size, OUT / "ref")
                ref = pyvips.Image.new_from_file(str(ref_path), access="sequential")
                ref = ref.copy_memory()
                proxy = metric.Reference(ref)
                for fmt, qualities in QUALITIES.items():
                    for q in qualities:
                        enc = pyvips.Image.new_from_buffer(encode(ref, Encoding(fmt, q, q)), "")
                        enc = enc.copy_memory()
                        enc.pngsave(str(distorted))
                        their_max, their_p3, their_cpu = butteraugli_main(ref_path, distorted)
                        start = time.process_time()
                        our_max, our_p3 = butteraugli.scores(ref, enc)
                        our_cpu = time.process_time() - start
                        row = {
                            "photo": photo.stem, "size": size, "width": ref.width,
                            "height": ref.height, "format": fmt, "q": q,
                            "their_max": their_max, "their_p3": their_p3, "their_cpu": their_cpu,
                            "our_max": our_max, "our_p3": our_p3, "our_cpu": our_cpu,
                            "proxy": proxy.distance(enc, fmt),
                        }  # fmt: skip
                        rows.append(row)
                        print(
                            f"{photo.stem[:18]:18s} {ref.width:4d}x{ref.height:<4d} {fmt:4s} q{q:<3d}"
                            f" 3-norm {their_p3:.4f} ours {our_p3:.4f}"
                            f" ({our_p3 / their_p3 - 1:+.2%})  max {their_max:.3f} {our_max:.3f}"
                            f"  cpu {their_cpu * 1000:4.0f} / {our_cpu * 1000:4.0f} ms",
                            flush=True,
                        )
    return rows


def summary(rows: list[dict]) -> None:
    rel = np.array([r["our_p3"] / r["their_p3"] - 1 for r in rows])
    rel_max = np.array([r["our_max"] / r["their_max"] - 1 for r in rows])
    theirs = np.array([r["their_p3"] for r in rows])
    ours = np.array([r["our_p3"] for r in rows])
    print(f"\n{len(rows)} pairs, {len({r['photo'] for r in rows})} photos")
    print(
        f"3-norm relative error: mean {rel.mean():+.2%}, mean |.| {np.abs(rel).mean():.2%}, "
        f"max |.| {np.abs(rel).max():.2%}, sd {rel.std():.2%}; "
        f"correlation {np.corrcoef(theirs, ours)[0, 1]:.5f}"
    )
    print(
        f"max-distance relative error: mean {rel_max.mean():+.2%}, "
        f"max |.| {np.abs(rel_max).max():.2%}"
    )
    for fmt in QUALITIES:
        sel = np.array([r["format"] == fmt for r in rows])
        print(
            f"  {fmt}: 3-norm error mean {rel[sel].mean():+.2%}, max |.| {np.abs(rel[sel]).max():.2%}"
        )
    print("CPU time per call (median), butteraugli_main (PNG decode included) vs ours:")
    for size in SIZES:
        sel = [r for r in rows if r["size"] == size]
        if sel:
            theirs_ms = statistics.median(r["their_cpu"] for r in sel) * 1000
            ours_ms = statistics.median(r["our_cpu"] for r in sel) * 1000
            print(
                f"  {size:8s} ({sel[0]['width']}x{sel[0]['height']}...): "
                f"{theirs_ms:.0f} ms vs {ours_ms:.0f} ms"
            )
    probe_prediction(rows)


def probe_prediction(rows: list[dict]) -> None:
    """Does the 320 px probe's proxy error, measured with our butteraugli, predict the proxy
    error (against butteraugli_main) of the same photo and format at 480 and 1200 px?"""
    probe = {
        (r["photo"], r["format"], r["q"]): r["our_p3"] - r["proxy"]
        for r in rows
        if r["size"] == SIZES[0]
    }
    print("\nProxy error e = butteraugli - metric.distance; probe: ours at the 320 px box")
    for size in SIZES[1:]:
        sel = [r for r in rows if r["size"] == size and (r["photo"], r["format"], r["q"]) in probe]
        if len(sel) < 3:
            continue
        e = np.array([r["their_p3"] - r["proxy"] for r in sel])
        e_probe = np.array([probe[r["photo"], r["format"], r["q"]] for r in sel])
        # The same, with the probe's error averaged over its 3 qualities (a search probes one
        # quality; the mean shows what a per-photo-and-format correction could do).
        per_fmt: dict[tuple[str, str], list[float]] = {}
        for (photo, fmt, _), value in probe.items():
            per_fmt.setdefault((photo, fmt), []).append(value)
        e_probe_mean = np.array([np.mean(per_fmt[r["photo"], r["format"]]) for r in sel])
        slope = float(np.dot(e - e.mean(), e_probe - e_probe.mean()) / np.var(e_probe) / len(e))
        # e - a + b e_probe, a and b fitted on the other photos (leave one photo out).
        photos = np.array([r["photo"] for r in sel])
        held = np.empty_like(e)
        for photo in set(photos):
            fit = photos != photo
            b, a = np.polyfit(e_probe[fit], e[fit], 1)
            held[~fit] = e[~fit] - (a + b * e_probe[~fit])
        print(
            f"  {size:5s}: sd(e) {e.std():.3f} (rms {np.sqrt((e**2).mean()):.3f}), "
            f"sd(e - e_probe) {(e - e_probe).std():.3f}, "
            f"sd(e - mean e_probe over q) {(e - e_probe_mean).std():.3f}, "
            f"corr(e, e_probe) {np.corrcoef(e, e_probe)[0, 1]:.2f}, slope {slope:.2f}; "
            f"e - (a + b e_probe) fitted leaving the photo out: rms {np.sqrt((held**2).mean()):.3f}"
        )


def window_error(ref, enc, fmt: str, left: int, top: int, w: int, h: int) -> float:  # type: ignore[no-untyped-def]
    a, b = ref.crop(left, top, w, h), enc.crop(left, top, w, h)
    return butteraugli.distance(a, b) - metric.Reference(a).distance(b, fmt)


def window_rows(photos: list[Path]) -> list[dict]:
    from bench_quality import butteraugli as judged

    from imgpipe.engine import judge, open_source
    from imgpipe.options import parse

    rows = []
    for photo in photos:
        recipes = [parse(f"1200,format={f},quality=medium,timeout=3600") for f in FORMATS]
        path = reference_png(photo, 1200, OUT / "ref")
        ref = pyvips.Image.new_from_file(str(path)).colourspace("srgb").copy_memory()
        side = min(1.0, (judge.WINDOW / (ref.width * ref.height)) ** 0.5)
        w, h = round(ref.width * side), round(ref.height * side)
        for recipe, made in zip(recipes, open_source(photo).render_all(recipes), strict=True):
            enc = pyvips.Image.new_from_buffer(made.data, "").colourspace("srgb").copy_memory()
            fmt = recipe.format
            worst = judge._worst(metric.Reference(ref).error_map(enc), w, h)
            row = {
                "photo": photo.stem,
                "format": fmt,
                "e": judged(path, made.data) - metric.Reference(ref).distance(enc, fmt),
                "centre": window_error(
                    ref, enc, fmt, (ref.width - w) // 2, (ref.height - h) // 2, w, h
                ),
                "worst": window_error(
                    ref, enc, fmt, min(worst[0], ref.width - w), min(worst[1], ref.height - h), w, h
                ),
            }
            row["both"] = (row["centre"] + row["worst"]) / 2
            rows.append(row)
            print(row, flush=True)
    return rows


def windows(photos: int) -> None:
    """The --window table (see the module docstring)."""
    sets = {
        which: window_rows(photo_set(which, photos))
        for which in ("calibration", "heldout", "bench")
    }
    print(
        "| window | format | slope (calibration) | "
        + " | ".join(f"{w}: sd(e) -> left" for w in sets)
        + " |"
    )
    for name in ("worst", "centre", "both"):
        for fmt in (*FORMATS, None):
            fitted = [r for r in sets["calibration"] if fmt in (None, r["format"])]
            e, c = (np.array([r[k] for r in fitted]) for k in ("e", name))
            slope = (e * c).sum() / (c * c).sum()
            cells = []
            for rows in sets.values():
                mine = [r for r in rows if fmt in (None, r["format"])]
                e, c = (np.array([r[k] for r in mine]) for k in ("e", name))
                cells.append(f"{e.std():.3f} -> {(e - slope * c).std():.3f}")
            print(f"| {name} | {fmt or 'all'} | {slope:.2f} | " + " | ".join(cells) + " |")


SPEED_PHOTOS = ("Dune", "Garden", "LadyBird")
SPEED_SIZES = ((320, 240), (480, 320), (1200, 800))


def cpu(call, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Median CPU seconds of `call()` after a warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return statistics.median(times)


def speed(old_path: Path | None) -> None:
    import importlib.util

    pyvips.concurrency_set(1)
    old = None
    if old_path:
        spec = importlib.util.spec_from_file_location("butteraugli_old", old_path)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    worst = 0.0
    for width, height in SPEED_SIZES:
        new_ms, old_ms, reuse_ms = [], [], []
        for name in SPEED_PHOTOS:
            ref = pyvips.Image.thumbnail(
                f"/work/photos/{name}.jpg", width, height=height, crop="centre"
            ).copy_memory()
            for fmt, q in (("jpeg", 60), ("avif", 50)):
                enc = pyvips.Image.new_from_buffer(encode(ref, Encoding(fmt, q, q)), "")
                enc = enc.copy_memory()
                new_ms.append(cpu(lambda: butteraugli.distance(ref, enc)) * 1000)  # noqa: B023
                reference = butteraugli.Reference(ref)
                reuse_ms.append(cpu(lambda: reference.distance(enc)) * 1000)  # noqa: B023
                if old:
                    old_ms.append(cpu(lambda: old.distance(ref, enc)) * 1000)  # noqa: B023
                    a, b = old.scores(ref, enc), butteraugli.scores(ref, enc)
                    worst = max(worst, abs(b[0] / a[0] - 1), abs(b[1] / a[1] - 1))
        line = (
            f"{width}x{height}: {statistics.median(new_ms):.1f} ms per call, "
            f"{statistics.median(reuse_ms):.1f} ms with the Reference reused"
        )
        if old:
            before = statistics.median(old_ms)
            line += f"; old {before:.1f} ms ({before / statistics.median(new_ms):.2f}x)"
        print(line, flush=True)
    if old:
        print(f"largest relative difference against the old code (3-norm, max): {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=6, help="the first N calibration photos")
    parser.add_argument("--save", type=Path, help="keep the rows (.json)")
    parser.add_argument("--table", type=Path, help="print the summary of saved rows")
    parser.add_argument("--window", action="store_true", help="judge.py's window (see above)")
    parser.add_argument("--speed", action="store_true", help="CPU per call (see above)")
    parser.add_argument("--old", type=Path, help="--speed: an earlier butteraugli.py to compare")
    args = parser.parse_args()
    if args.speed:
        print(f"load: {load()}")
        speed(args.old)
        print(f"load: {load()}")
        return
    if args.table:
        summary(json.loads(args.table.read_text()))
        return
    if not os.path.exists("/usr/bin/butteraugli_main"):
        sys.exit("butteraugli_main not found: apt-get install -y libjxl-devtools")
    print(f"load: {load()}")
    if args.window:
        windows(args.photos)
        return
    rows = pair_rows(photo_set("calibration", args.photos))
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(rows, indent=1))
    summary(rows)
    print(f"load: {load()}")


if __name__ == "__main__":
    main()
