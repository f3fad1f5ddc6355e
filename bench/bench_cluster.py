"""Beyond one machine: figures for the cluster issue (not tests), medians of a few runs.

    python bench/bench_cluster.py cluster   # the same clean build locally (jobs=1, 2) and on a
                                            # dask cluster with 1 and 2 workers (1 thread each)
    python bench/bench_cluster.py refill    # a fresh machine filling its output from the shared
                                            # store (moto S3): renditions per second
    python bench/bench_cluster.py cluster --photos DIR --count 12 [--rules site|fixed]
                                            # the same on the first 12 real photos in DIR
                                            # (/work/shared/bench-photos.sh DIR fetches them)
    python bench/bench_cluster.py plan      # coordinator planning time and memory for a
                                            # synthetic plan of 100,000 sources (no pixels)

Services (moto's S3 server, `dask scheduler`, `dask worker`) run on 127.0.0.1, started and
killed by this script (tests/cluster_support.py). Every build is a separate `imgpipe build`
process, so figures include interpreter start-up; cluster builds include connecting to the
scheduler and uploading the sources to the store.

Which build on real photos. `--rules site` (the default) is the example site's responsive
family (imgpipe.toml: 480/960/1600 wide in AVIF, WebP and JPEG at the default quality=medium,
whose encoder quality is searched per image): what a site that outgrows one machine renders,
since a cluster is worth starting only for builds of that kind. `--rules fixed` is the cheap
build measured first (6 renditions at a fixed quality=80, no AVIF): about a third of the
work per photo, so the cluster path's fixed costs (the coordinator's imports of distributed
and s3fs, the uploads, and here the S3 server on the same 2 cores) weigh about three times as
much. Both are reported; neither is picked to hide that overhead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / ".out" / "cluster"
sys.path.insert(0, str(REPO / "tests"))

from cluster_support import cli, start_cluster, start_s3, stop  # noqa: E402
from site_support import files  # noqa: E402

HEAD = """source = "images"
output = "public/img"
cache_dir = ".cache"
jobs = {jobs}
{extra}
"""
SYNTHETIC_RULES = """
[[rules]]
include = ["*.jpg"]
renditions = { thumb = "240x240,crop,quality=75" }

[[rules]]
include = ["*.jpg"]
widths = [480, 960]
formats = ["webp", "jpeg"]
options = "quality=75"
"""
# Real photos (the module docstring says why two builds).
PHOTO_RULES = {
    # The example site's family (imgpipe.toml): AVIF, WebP, JPEG at the default quality=medium.
    "site": """
[[rules]]
include = ["*.jpg", "*.jpeg", "*.JPG", "*.JPEG"]
widths = [480, 960, 1600]
formats = ["avif", "webp", "jpeg"]
""",
    # A cheap build: no AVIF, no quality search.
    "fixed": """
[[rules]]
include = ["*.jpg", "*.jpeg", "*.JPG", "*.JPEG"]
widths = [480, 960, 1600]
formats = ["webp", "jpeg"]
options = "quality=80"
""",
}
RULES = SYNTHETIC_RULES


def make_sources(directory: Path, count: int) -> None:
    import pyvips

    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        xyz = pyvips.Image.xyz(1600, 1200)
        img = (xyz[0] * (i + 1) % 256).bandjoin([xyz[1] % 256, (xyz[0] ^ xyz[1]) % 256])
        noise = pyvips.Image.gaussnoise(1600, 1200, sigma=20)
        (img + noise).cast("uchar").copy(interpretation="srgb").jpegsave(
            str(directory / f"img{i:03d}.jpg"), Q=90
        )


def site(name: str, sources: Path, jobs: int, extra: str = "") -> Path:
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "images").symlink_to(sources)
    (root / "imgpipe.toml").write_text(HEAD.format(jobs=jobs, extra=extra) + RULES)
    return root


def timed_build(root: Path, *args: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = cli(root, "build", "--no-progress", *args, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    return seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process (and its waited-for children) used so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def group_cpu(pgids: list[int]) -> float:
    """CPU of every live process in these process groups (a dask worker is a nanny and its
    worker child; each service runs in its own group)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:
            total += cpu_seconds(int(stat.parent.name))
    return total


def children_cpu() -> float:
    """CPU of this script's finished children (each `imgpipe build` run)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def copy_photos(photos: Path, directory: Path, count: int) -> int:
    """The first `count` photos of `photos` (by name) copied into `directory`; their pixels."""
    import pyvips

    picked = sorted(
        p for p in photos.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg")
    )[:count]
    if len(picked) < count:
        raise SystemExit(f"{photos} has {len(picked)} photos, {count} wanted")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    pixels = 0
    for p in picked:
        shutil.copyfile(p, directory / p.name)
        image = pyvips.Image.new_from_file(str(p))
        pixels += image.width * image.height
    return pixels


STORES = {
    "s3": "cluster, store on S3 (moto server)",
    "file": "cluster, store on local disk (file://, no S3 server)",
}


def url(s3, store: str) -> str:
    """A new, empty store."""
    if store == "s3":
        return s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    return (OUT / f"store-{uuid.uuid4().hex[:12]}").as_uri()


def cluster_build(
    s3, cluster, groups: list[list[int]], sources: Path, name: str, reference: dict, store: str
) -> tuple[float, dict[str, float]]:
    """One clean cluster build into a new, empty store: wall seconds and the CPU seconds of
    each process (coordinator, scheduler, workers, S3 server). Its output must equal the
    local build's byte for byte."""
    root = site(name, sources, len(cluster.workers), f'remote_cache = "{url(s3, store)}"')
    before = (cpu_seconds(s3.proc.pid), children_cpu(), *(group_cpu(g) for g in groups))
    seconds = timed_build(root, "--scheduler", cluster.address, env=s3.env())
    after = (cpu_seconds(s3.proc.pid), children_cpu(), *(group_cpu(g) for g in groups))
    assert files(root / "public") == reference, "cluster output differs from the local build's"
    names = ("S3 server", "coordinator", "scheduler", "workers")
    return seconds, {n: a - b for n, a, b in zip(names, after, before, strict=True)}


def _percent(value: float, base: float) -> str:
    return f"{100 * (value - base) / base:+.1f}%"


def bench_cluster(count: int, runs: int, photos: Path | None = None, rules: str = "site") -> None:
    """Local jobs=N (one process, N render threads, libvips with 1 thread each) against N dask
    workers of 1 thread (libvips always runs 1 thread per render: imgpipe/engine/load.py):
    the same renders on the same number of cores. Wall time is noisy on a shared machine; the
    CPU seconds of each process are not, and say where the cluster path's own cost goes."""
    global RULES
    if photos is None:
        sources = OUT / "sources"
        if len(list(sources.glob("*.jpg"))) != count:
            shutil.rmtree(sources, ignore_errors=True)
            make_sources(sources, count)
        what = f"{count} synthetic 2 MP sources x 5 renditions"
    else:
        sources = OUT / "photo-sources"
        RULES = PHOTO_RULES[rules]
        pixels = copy_photos(photos, sources, count)
        size = sum(p.stat().st_size for p in sources.iterdir())
        what = (
            f"{count} real photos ({pixels / count / 1e6:.1f} MP, {size / count / 1e6:.1f} MB "
            f"average), rules {rules!r}: "
            + ("9 renditions, quality=medium" if rules == "site" else "6 renditions, quality=80")
        )
    print(f"{what}; medians of {runs} run(s); every build a separate `imgpipe build` process")
    one_source = OUT / "warm-source"  # what warms the workers up
    shutil.rmtree(one_source, ignore_errors=True)
    one_source.mkdir()
    smallest = min(sources.iterdir(), key=lambda p: p.stat().st_size)
    shutil.copyfile(smallest, one_source / smallest.name)
    s3 = start_s3(OUT / "moto.log")
    try:
        for workers in (1, 2):
            load = os.getloadavg()
            cluster = start_cluster(s3.env(), OUT / "dask.log", workers=workers)
            try:
                groups = [[cluster.scheduler.pid], [p.pid for p in cluster.workers]]
                wall: dict[str, list[float]] = {"local": [], **{k: [] for k in STORES}}
                cpu: dict[str, list[dict[str, float]]] = {"local": [], **{k: [] for k in STORES}}
                # Workers load libvips and each store's libraries on their first job, as a
                # cluster that has been up for a while has.
                for store in STORES:
                    warm = site(
                        f"warm{workers}", one_source, workers, f'remote_cache = "{url(s3, store)}"'
                    )
                    timed_build(warm, "--scheduler", cluster.address, env=s3.env())
                for run in range(runs):
                    # Local and cluster builds alternate, so the load of whatever else runs
                    # on the machine falls on all alike.
                    root = site(f"local{workers}-{run}", sources, workers)
                    before = children_cpu()
                    wall["local"].append(timed_build(root))
                    cpu["local"].append({"coordinator": children_cpu() - before})
                    reference = files(root / "public")
                    for store in STORES:
                        name = f"{store}{workers}-{run}"
                        seconds, used = cluster_build(
                            s3, cluster, groups, sources, name, reference, store
                        )
                        wall[store].append(seconds)
                        cpu[store].append(used)
            finally:
                cluster.stop()
            report(workers, wall, cpu, load, os.getloadavg())
    finally:
        stop(s3.proc)


def report(workers: int, wall: dict, cpu: dict, load: tuple, load_after: tuple) -> None:
    def med(rows: list[dict[str, float]], name: str) -> float:
        return statistics.median(r.get(name, 0.0) for r in rows)

    local = statistics.median(wall["local"])
    local_cpu = med(cpu["local"], "coordinator")
    print(
        f"parallelism {workers} (load average {load[0]:.1f} before, {load_after[0]:.1f} after):"
        f"\n  wall: local jobs={workers} {local:.2f} s"
    )
    for store, label in STORES.items():
        seconds = statistics.median(wall[store])
        print(f"  wall: {label}, {workers} worker(s): {seconds:.2f} s ({_percent(seconds, local)})")
    print(f"  CPU: local build {local_cpu:.2f} s (one process)")
    for store, label in STORES.items():
        parts = {n: med(cpu[store], n) for n in ("coordinator", "scheduler", "workers")}
        own = sum(parts.values())
        server = med(cpu[store], "S3 server")
        print(
            f"  CPU: {label}: "
            + ", ".join(f"{n} {v:.2f} s" for n, v in parts.items())
            + f"; without the store server {own:.2f} s ({_percent(own, local_cpu)})"
            + (
                f"; S3 server {server:.2f} s, with it {own + server:.2f} s "
                f"({_percent(own + server, local_cpu)})"
                if store == "s3"
                else ""
            ),
            flush=True,
        )


def bench_refill(count: int, runs: int) -> None:
    import os

    from imgpipe.build import build
    from imgpipe.config import load

    sources = OUT / "refill-sources"
    if len(list(sources.glob("*.jpg"))) != count:
        shutil.rmtree(sources, ignore_errors=True)
        make_sources(sources, count)
    s3 = start_s3(OUT / "moto.log")
    try:
        url = s3.make_bucket("refill")
        extra = f'remote_cache = "{url}/site"'
        timed_build(site("filler", sources, 2, extra), env=s3.env())
        renditions = count * 5
        rates = []
        for run in range(runs):
            rates.append(
                renditions / timed_build(site(f"fresh-{run}", sources, 2, extra), env=s3.env())
            )
        print(
            f"refill from moto S3: {statistics.median(rates):.0f} renditions/s "
            f"({renditions} renditions, whole `imgpipe build` process; median of {runs})"
        )
        os.environ.update(s3.env())
        build(load(site("warm", sources, 2, extra) / "imgpipe.toml"))  # imports, connections
        rates = []
        for run in range(runs):
            config = load(site(f"inproc-{run}", sources, 2, extra) / "imgpipe.toml")
            summary = build(config)
            assert summary.built == 0 and summary.cached == renditions
            rates.append(renditions / summary.seconds)
        print(
            f"refill from moto S3, in a warm process (the build's own time): "
            f"{statistics.median(rates):.0f} renditions/s (median of {runs})"
        )
    finally:
        stop(s3.proc)


def bench_plan(count: int, runs: int) -> None:
    """Planning only: the coordinator's own cost per source, without a byte of pixels."""
    import hashlib
    import tracemalloc

    from imgpipe.config import from_dict
    from imgpipe.model import Job
    from imgpipe.plan import SourceFile, make

    config = from_dict(
        {
            "source": "images",
            "output": "public",
            "rules": [
                {"include": ["**/*.jpg"], "renditions": {"thumb": "240x240,crop,quality=75"}},
                {
                    "include": ["**/*.jpg"],
                    "widths": [480, 960],
                    "formats": ["webp", "jpeg"],
                    "options": "quality=75",
                },
            ],
        },
        OUT,
    )
    sources = [
        SourceFile(
            f"d{i // 100:04d}/img{i:06d}.jpg",
            f"/src/d{i // 100:04d}/img{i:06d}.jpg",
            100_000 + i,
            i,
            i,
            i,
        )
        for i in range(count)
    ]

    def plan_and_jobs() -> None:
        plan = make(config, sources, lambda f: hashlib.sha256(f.path.encode()).hexdigest(), "fp")
        [
            Job(
                sp.source.relpath,
                sp.source.path,
                sp.sha256,
                tuple((r.key, r.options) for r in sp.renditions),
                config.limits,
            )
            for sp in plan.sources
        ]

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plan_and_jobs()
        times.append(time.perf_counter() - start)
    tracemalloc.start()  # a separate run: tracing slows allocation several-fold
    plan_and_jobs()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"plan + jobs for {count} sources ({count * 5} renditions): "
        f"{statistics.median(times):.2f} s (median of {runs}), peak {peak / 1e6:.0f} MB "
        "(Python allocations, tracemalloc)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["cluster", "refill", "plan"])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="cluster: real JPEGs from this directory instead of synthetic ones",
    )
    parser.add_argument(
        "--rules",
        choices=sorted(PHOTO_RULES),
        default="site",
        help="cluster --photos: the example site's family (default) or a cheap fixed-quality one",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "cluster":
        bench_cluster(args.count or (12 if args.photos else 16), args.runs, args.photos, args.rules)
    elif args.what == "refill":
        bench_refill(args.count or 16, args.runs)
    else:
        bench_plan(args.count or 100_000, args.runs)


if __name__ == "__main__":
    main()
