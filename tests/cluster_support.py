"""Real services for the "beyond one machine" tests, on 127.0.0.1 only: moto's S3 server and a
dask scheduler with two workers, each a subprocess this module starts and always kills.

A site (small images, fixed qualities: fast) and helpers to build it with the real CLI.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from site_support import draw_sources

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
PIXEL_BUDGET = 200_000_000  # each worker's `pixels` resource: over limits.max_pixels (100 MP)

CONFIG = """
source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"
jobs = 2
{extra}

[[rules]]
include = ["**/*.{{jpg,png}}"]
renditions = {{ thumb = "96x96,crop,quality=80", big = "320,quality=80" }}

[[rules]]
include = ["photos/*.jpg"]
widths = [120, 240]
formats = ["webp", "jpeg"]
options = "quality=80"
sizes = "50vw"
"""


_started: list[subprocess.Popen] = []  # services started and not stopped yet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_site(root: Path, count: int = 2, extra: str = "") -> Path:
    draw_sources(root, count, 400, 300)
    (root / "imgpipe.toml").write_text(CONFIG.format(extra=extra))
    return root


def stop(proc: subprocess.Popen) -> None:
    """Kill the process group the service leads (a dask worker is a nanny and its child),
    even when the leader has exited already and left the child behind."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is gone
    proc.wait(timeout=30)
    if proc in _started:
        _started.remove(proc)


def _die_with_parent() -> None:
    """In the child, before exec: the kernel SIGKILLs it when the process that started it
    dies, however that dies (a SIGKILLed pytest runs no teardown). A dask worker's own child
    exits when its nanny does (distributed watches a pipe to its parent)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl: no signal would come
        os._exit(1)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: killed as a whole
            preexec_fn=_die_with_parent,
        )
    _started.append(proc)
    return proc


def stop_all() -> None:
    """Kill every service this process started and has not stopped (session teardown)."""
    while _started:
        stop(_started.pop())


@dataclass
class S3:
    """moto in server mode: a real S3 API on 127.0.0.1."""

    endpoint: str
    proc: subprocess.Popen

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def make_bucket(self, name: str) -> str:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=name)
        return f"s3://{name}"


def start_s3(log: Path) -> S3:
    port = free_port()
    proc = _start(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ), log
    )
    endpoint = f"http://127.0.0.1:{port}"
    _wait(lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1), proc, log)
    return S3(endpoint, proc)


@dataclass
class Cluster:
    """`dask scheduler` + `dask worker`s on 127.0.0.1 (one process, one thread each)."""

    address: str
    scheduler: subprocess.Popen
    env: dict[str, str]
    log: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def add_worker(self, threads: int = 1, budget: int = PIXEL_BUDGET) -> subprocess.Popen:
        proc = _start(
            [
                str(BIN / "dask"),
                "worker",
                self.address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                str(threads),
                "--no-dashboard",
                "--resources",
                f"pixels={budget}",
                "--memory-limit",
                "0",
            ],
            self.env,
            self.log,
        )
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout="10s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            stop(proc)


def start_cluster(env: dict[str, str], log: Path, workers: int = 2) -> Cluster:
    port = free_port()
    env = {
        **env,
        "PYTHONPATH": str(REPO),
        "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
    }
    scheduler = _start(
        [
            str(BIN / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env,
        log,
    )
    cluster = Cluster(f"tcp://127.0.0.1:{port}", scheduler, env, log)
    try:
        _wait(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close(), scheduler, log
        )
        for _ in range(workers):
            cluster.add_worker()
        if workers:
            cluster.wait_for_workers(workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait(probe, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {log.read_text()[-2000:]}")
        try:
            probe()
            return
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise
            time.sleep(0.1)


def cli(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from imgpipe.cli import main; main()", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fresh_machine(site: Path, target: Path) -> Path:
    """A new checkout of the same site: sources and config, no output, no cache_dir."""
    shutil.copytree(site / "images", target / "images")
    shutil.copy(site / "imgpipe.toml", target / "imgpipe.toml")
    return target
