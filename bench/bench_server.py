"""Bounded load test for `imgpipe serve` (not a test; run by hand: python bench/bench_server.py).

Starts `imgpipe serve` as a subprocess on 127.0.0.1 and an origin on 127.0.0.2 (the only
allow-listed network), then sends a fixed number of requests from N concurrent clients: good
images of mixed sizes, uploads, bad options, wrong users, missing and oversized images,
non-images and SSRF attempts. Every answer must have a status expected for its kind; the
server's RSS is sampled before, during and after the load. All traffic stays on loopback, the
request count is fixed and the whole run has a deadline.

Measured on the 2-core dev machine (shared), defaults (400 requests x 3 rounds, 50 clients,
2 workers, queue 16): ~80-110 req/s, only expected statuses (503 for ~half of the slot-needing
requests, by design), RSS 58 MB after warm-up, ~135 MB peak, 61 MB settled after each round
(+5%). Without memory.py's allocator settings it settled at 210 MB (+67%).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from server_support import ORIGIN_IP, Origin  # noqa: E402

USER = "bench-user"
MAX_BYTES = 8_000_000
DEADLINE_SECONDS = 300

# kind -> (weight, statuses it may get). 503 is expected only for kinds that need a work slot
# (everything that passed validation); refusals before that never queue.
KINDS: dict[str, tuple[int, set[int]]] = {
    "small": (30, {200, 503}),
    "large": (12, {200, 503}),
    "upload": (10, {200, 503}),
    "bad-options": (10, {400}),
    "wrong-user": (5, {403}),
    "get": (5, {405}),
    "missing": (6, {404, 503}),
    "too-large": (5, {413, 503}),
    "not-image": (6, {415, 503}),
    "upload-garbage": (5, {415, 503}),
    "ssrf": (6, {400}),  # address literals are refused before taking a slot
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def jpeg(width: int, height: int) -> bytes:
    image = pyvips.Image.xyz(width, height).extract_band(0).cast("uchar")
    image = image.bandjoin([image.flip("horizontal"), image.flip("vertical")])
    return image.jpegsave_buffer(Q=92)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def php_upload(data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "XXX" + hashlib.md5(b"x.jpg").hexdigest()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--".encode()
    )
    return body, {"Content-Type": f"multipart/form-data, boundary={boundary}"}


def make_request(kind: str, origin: Origin, small: bytes) -> tuple[str, str, dict]:
    base = f"/{USER}"
    if kind == "small":
        return "POST", f"{base}/160x100,crop,2x/{origin.base}/img/640x480.png", {}
    if kind == "large":
        return "POST", f"{base}/800x600,format=webp/{origin.base}/img/3000x2000.png", {}
    if kind == "upload":
        body, headers = php_upload(small)
        return "POST", f"{base}/300x200,fit", {"content": body, "headers": headers}
    if kind == "bad-options":
        return "POST", f"{base}/160x100,quality=best/{origin.base}/img/640x480.png", {}
    if kind == "wrong-user":
        return "POST", f"/nobody/full/{origin.base}/img/640x480.png", {}
    if kind == "get":
        return "GET", f"{base}/full/{origin.base}/img/640x480.png", {}
    if kind == "missing":
        return "POST", f"{base}/full/{origin.base}/nothing.png", {}
    if kind == "too-large":
        return "POST", f"{base}/full/{origin.base}/big?n={MAX_BYTES * 3}", {}
    if kind == "not-image":
        return "POST", f"{base}/full/{origin.base}/garbage", {}
    if kind == "upload-garbage":
        body, headers = php_upload(os.urandom(20_000))
        return "POST", f"{base}/full", {"content": body, "headers": headers}
    if kind == "ssrf":
        return "POST", f"{base}/full/http://2130706433:{free_port()}/a.png", {}
    raise ValueError(kind)


async def load(url: str, origin: Origin, pid: int, requests: int, clients: int, seed: int):
    rng = random.Random(seed)
    names = list(KINDS)
    plan = rng.choices(names, weights=[KINDS[k][0] for k in names], k=requests)
    small = jpeg(640, 480)
    results: list[tuple[str, int, float]] = []
    peak = [rss_kib(pid)]
    jobs: asyncio.Queue[str] = asyncio.Queue()
    for kind in plan:
        jobs.put_nowait(kind)

    async def client(http: httpx.AsyncClient) -> None:
        while not jobs.empty():
            kind = jobs.get_nowait()
            method, path, extra = make_request(kind, origin, small)
            started = time.monotonic()
            response = await http.request(method, url + path, **extra)
            results.append((kind, response.status_code, time.monotonic() - started))

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_kib(pid))
            await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(*(client(http) for _ in range(clients))), DEADLINE_SECONDS
        )
        elapsed = time.monotonic() - started
        sampler.cancel()
    return results, elapsed, peak[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Load rounds; RSS after each shows growth versus a plateau.",
    )
    args = parser.parse_args()

    port = free_port()
    with Origin(ORIGIN_IP) as origin:
        origin.images[(640, 480)] = jpeg(640, 480)
        origin.images[(3000, 2000)] = jpeg(3000, 2000)
        command = [
            sys.executable,
            "-c",
            "from imgpipe.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--user",
            USER,
            "--allow-net",
            f"{ORIGIN_IP}/32",
            "--max-bytes",
            str(MAX_BYTES),
            "--workers",
            str(args.workers),
            "--queue",
            str(args.queue),
            "--fetch-timeout",
            "20",
        ]
        log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log", delete=False)
        print(f"server log: {log.name}")
        server = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            return run(args, server, port, origin)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


def run(args, server: subprocess.Popen, port: int, origin: Origin) -> int:
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    start_rss = rss_kib(server.pid)
    # Warm up: every kind once, so baseline includes libvips and the loaders being loaded.
    warm, _, _ = asyncio.run(load(url, origin, server.pid, len(KINDS) * 3, 1, args.seed))
    time.sleep(1)
    baseline = rss_kib(server.pid)
    results: list[tuple[str, int, float]] = []
    elapsed, peak, after = 0.0, 0, []
    for round_ in range(args.rounds):
        got, took, top = asyncio.run(
            load(url, origin, server.pid, args.requests, args.clients, args.seed + 1 + round_)
        )
        results += got
        elapsed, peak = elapsed + took, max(peak, top)
        time.sleep(3)  # let finishing jobs and freed buffers settle
        after.append(rss_kib(server.pid))
        print(
            f"round {round_ + 1}: {len(got)} requests in {took:.1f} s; RSS peak {top} KiB, "
            f"settled {after[-1]} KiB"
        )

    unexpected = [(k, s) for k, s, _ in results if s not in KINDS[k][1]]
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for kind, status, _ in results:
        by_kind[kind][status] += 1
    times = sorted(t for _, s, t in results if s == 200)
    print(
        f"{len(results)} requests in {args.rounds} rounds, {args.clients} clients, {args.workers} workers, "
        f"queue {args.queue}: {elapsed:.1f} s, {len(results) / elapsed:.1f} req/s"
    )
    for kind in KINDS:
        print(f"  {kind:15} {dict(sorted(by_kind[kind].items()))}")
    if times:
        print(
            f"  200 latency: p50 {statistics.median(times) * 1000:.0f} ms, "
            f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
        )
    print(
        f"  RSS KiB: start {start_rss}, after warm-up {baseline}, peak {peak}, "
        f"after load {after[-1]} ({(after[-1] - baseline) / baseline:+.1%} vs warm-up)"
    )
    print(f"  unexpected statuses: {unexpected or 'none'}")
    return 1 if unexpected or warm is None else 0


if __name__ == "__main__":
    sys.exit(main())
