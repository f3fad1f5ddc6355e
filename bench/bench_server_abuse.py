"""How long a hostile multipart upload stalls `imgpipe serve` (issue 18, item 8).

Starts `imgpipe serve` (from --code, default this checkout), POSTs a body of N tiny parts
(default 900,000 parts, ~47 MB) and meanwhile times `GET /` once per 50 ms. Prints, per round:
the upload's status, answer size and time, and the slowest GET / during it; then medians.

    python bench/bench_server_abuse.py --rounds 3
    python bench/bench_server_abuse.py --code /path/to/other/checkout   # e.g. before the fix
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_of(parts: int) -> tuple[bytes, dict[str, str]]:
    part = b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n'
    body = b"".join(part % i for i in range(parts)) + b"--b--\r\n"
    return body, {"Content-Type": "multipart/form-data; boundary=b"}


def one_round(base: str, body: bytes, headers: dict[str, str]) -> tuple[int, int, float, float]:
    done = threading.Event()
    result: list = []

    def upload() -> None:
        started = time.monotonic()
        response = httpx.post(f"{base}/u/full", content=body, headers=headers, timeout=300)
        result.extend([response.status_code, len(response.content), time.monotonic() - started])
        done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    slowest = 0.0
    while not done.is_set():
        started = time.monotonic()
        httpx.get(base + "/", timeout=300)
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    thread.join()
    return result[0], result[1], result[2], slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=900_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    body, headers = body_of(args.parts)
    port = free_port()
    command = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(args.code)!r}); from imgpipe.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--user",
        "u",
        "--max-bytes",
        str(60 * 1024 * 1024),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        print(f"{args.parts} parts, {len(body) / 1e6:.1f} MB, code from {args.code}")
        rounds = []
        for _ in range(args.rounds):
            status, size, took, slowest = one_round(base, body, headers)
            rounds.append((took, slowest))
            print(
                f"  upload {status} ({size} bytes) in {took:.2f} s; slowest GET / {slowest:.2f} s"
            )
        print(
            f"median: upload {statistics.median(r[0] for r in rounds):.2f} s, "
            f"slowest GET / {statistics.median(r[1] for r in rounds):.2f} s"
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
