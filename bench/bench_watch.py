"""Watch latency: time from saving one photo to its renditions being on disk, minus the time
the engine spent decoding, resizing and encoding it (goal: under 0.5 s).

Not a test; run by hand: python bench/bench_watch.py [--trials 10] [--extra 0]

Copies the example site's photos and rules into a temp dir (optionally with `--extra` small
filler sources, to see how the per-round stat walk grows with the tree), starts a Watcher,
then per trial saves a changed version of one photo the way editors do (temp file + rename)
and waits for the round. Latency = round end - save; overhead = latency - engine time. The
overhead is mostly the debounce and settle quiet periods (0.2 s each by default, overlapping).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyvips

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgpipe.watch import Watcher  # noqa: E402

CONFIG = (REPO / "imgpipe.toml").read_text()


def make_site(root: Path, extra: int) -> Path:
    shutil.copytree(REPO / "example-site/images", root / "images")
    text = (
        CONFIG.replace('"example-site/images"', '"images"')
        .replace('"example-site/public/img"', '"public/img"')
        .replace('cache_dir = ".imgpipe-cache"', 'cache_dir = ".cache"')
        .replace("jobs = 0", "jobs = 2")
    )
    assert 'source = "images"' in text and 'output = "public/img"' in text
    text += '\n[[rules]]\ninclude = ["filler/**/*.jpg"]\nwidths = [64]\nformats = ["jpeg"]\n'
    (root / "imgpipe.toml").write_text(text)
    for i in range(extra):
        path = root / f"images/filler/d{i % 20}/f{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        tile = pyvips.Image.black(96, 64, bands=3).new_from_image([i % 256, 90, 160])
        path.write_bytes(tile.cast("uchar").copy(interpretation="srgb").jpegsave_buffer())
    return root


def variant(photo: Path, i: int) -> bytes:
    """A changed version of a photo (made before timing): new bytes, so new cache keys."""
    image = pyvips.Image.new_from_buffer(photo.read_bytes(), "")
    return (image * (0.99 - 0.01 * i)).cast("uchar").jpegsave_buffer(Q=90)


def save(path: Path, data: bytes) -> None:
    """Like an editor: write a hidden temp file, then rename it over the original."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--extra", type=int, default=0, help="filler sources added to the tree")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        root = make_site(Path(tmp), args.extra)
        photos = sorted((root / "images/photos").glob("*.jpg"))
        plans = [
            (photos[i % len(photos)], variant(photos[i % len(photos)], i))
            for i in range(args.trials)
        ]
        watcher = Watcher(root / "imgpipe.toml", log_line=lambda line: None)
        started = time.monotonic()
        watcher.start()
        first = watcher.wait_idle(1, timeout=600)
        print(
            f"initial build: {first.summary.sources} sources, {first.summary.built} renditions "
            f"in {time.monotonic() - started:.2f} s"
        )

        rows = []
        for photo, data in plans:
            count = watcher.round_count
            saved = time.monotonic()
            save(photo, data)
            done = watcher.wait_idle(count + 1, timeout=120)
            assert done.summary is not None and done.summary.ok, done
            rel = str(photo.relative_to(root / "images"))
            assert done.changed == (rel,), done.changed
            latency = done.finished - saved
            rows.append(
                (
                    latency,
                    done.engine_seconds,
                    latency - done.engine_seconds,
                    done.finished - done.seconds - saved,
                    done.summary.built,
                )
            )
            print(
                f"{rel:<24} latency {latency:.3f} s  engine {done.engine_seconds:.3f} s  "
                f"overhead {rows[-1][2]:.3f} s  (waited {rows[-1][3]:.3f} s before the round, "
                f"{done.summary.built} renditions)"
            )

        # A round where nothing needs rendering: the per-round cost of the tree itself.
        count = watcher.round_count
        os.utime(photos[0])
        idle = watcher.wait_idle(count + 1)
        watcher.stop()

    med = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        f"\nmedian of {len(rows)} trials ({first.summary.sources} sources in the tree): "
        f"latency {med[0]:.3f} s, engine {med[1]:.3f} s, overhead {med[2]:.3f} s "
        f"(of which {med[3]:.3f} s waiting for quiet before the round starts)"
    )
    print(f"a round that renders nothing: {idle.seconds * 1000:.0f} ms")
    print("goal: overhead < 0.5 s ->", "ok" if med[2] < 0.5 else "MISSED")


if __name__ == "__main__":
    main()
