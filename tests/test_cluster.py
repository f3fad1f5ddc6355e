"""Builds on a real dask.distributed cluster (`dask scheduler` + two `dask worker` processes on
127.0.0.1) with the shared cache on a real S3 API (moto's server): the same bytes as a local
build, nothing lost when a worker is SIGKILLed, a clean error when the scheduler goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cluster_support import REPO, cli, fresh_machine, make_site, start_cluster
from site_support import files

pytest.importorskip("pyvips")
pytest.importorskip("distributed")
pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """Output of the same site built on this machine alone (6 sources: the kill tests need a
    build long enough to interrupt)."""
    root = make_site(tmp_path_factory.mktemp("local"), count=6)
    done = cli(root, "build")
    assert done.returncode == 0, done.stderr
    return files(root / "public")


def _cluster_site(path, s3, count=6):
    url = s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    return make_site(path, count=count, extra=f'remote_cache = "{url}/site"')


def test_cluster_build_equals_local_build_byte_for_byte(
    tmp_path, s3, dask_cluster, local_reference
):
    site = _cluster_site(tmp_path / "a", s3)
    done = cli(
        site,
        "build",
        "--report",
        "r.json",
        env={**s3.env(), "IMGPIPE_SCHEDULER": dask_cluster.address},
    )
    assert done.returncode == 0, done.stderr
    assert files(site / "public") == local_reference  # manifest included
    report = json.loads((site / "r.json").read_text())
    assert report["renditions"] == {"built": 38, "cached": 0, "failed": 0}
    where = {w for labels in report["origins"].values() for w in labels.values()}
    assert where and all(w.startswith("tcp://127.0.0.1:") for w in where)

    # A second machine sharing only the store renders nothing, cluster or not.
    second = fresh_machine(site, tmp_path / "b")
    done = cli(
        second, "build", "--scheduler", dask_cluster.address, "--report", "r.json", env=s3.env()
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((second / "r.json").read_text())
    assert report["renditions"] == {"built": 0, "cached": 38, "failed": 0}
    assert {w for labels in report["origins"].values() for w in labels.values()} == {"remote-cache"}
    assert files(second / "public") == local_reference


def _build_until_first_result(site, env):
    """Start a cluster build; return it once its first source is done (plain progress)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from imgpipe.cli import main; main()", "build", "--no-progress"],
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if line.startswith("[1/"):
            return proc
    proc.wait()
    raise AssertionError(f"the build ended before a source was done: {proc.returncode}")


@pytest.mark.slow
def test_worker_sigkilled_mid_build_loses_nothing(tmp_path, s3, dask_cluster, local_reference):
    site = _cluster_site(tmp_path, s3)
    proc = _build_until_first_result(site, {**s3.env(), "IMGPIPE_SCHEDULER": dask_cluster.address})
    victim = dask_cluster.workers.pop(0)
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its nanny, with no goodbye
    victim.wait()
    try:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert files(site / "public") == local_reference
    finally:
        dask_cluster.add_worker()  # the next tests get two workers again
        dask_cluster.wait_for_workers(2)


@pytest.mark.slow
def test_scheduler_killed_mid_build_is_a_clean_error(tmp_path, s3, local_reference):
    cluster = start_cluster(s3.env(), tmp_path / "dask.log", workers=1)
    try:
        site = _cluster_site(tmp_path / "site", s3)
        proc = _build_until_first_result(site, {**s3.env(), "IMGPIPE_SCHEDULER": cluster.address})
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        cluster.stop()
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line and not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("error[scheduler-lost]: "), err
    assert "Traceback" not in err
    # Nothing partial: no temp file, no manifest naming files that were never written.
    public = site / "public"
    assert not [p for p in public.rglob("*") if p.name.startswith(".imgpipe-tmp-")]
    assert not (public / "img/imgpipe-manifest.json").exists()
    # The next build (here without the cluster) finishes the job, correctly.
    done = cli(site, "build", env=s3.env())
    assert done.returncode == 0, done.stderr
    assert files(public) == local_reference


def test_unreachable_scheduler_is_a_clean_error(tmp_path, s3):
    from cluster_support import free_port

    site = _cluster_site(tmp_path, s3, count=1)
    done = cli(site, "build", "--scheduler", f"tcp://127.0.0.1:{free_port()}", env=s3.env())
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error[scheduler-unreachable]: cannot reach the dask scheduler at tcp://127.0.0.1:"
        )
    )
    assert "Traceback" not in done.stderr


def test_jobs_declare_the_pixels_they_decode():
    """The dask resource a job asks for: its decoded size when the header is known, else the
    limit the engine enforces anyway (so a worker's budget is never exceeded)."""
    from imgpipe.cluster import DaskExecutor
    from imgpipe.model import Job, Limits, SourceInfo
    from imgpipe.store import StoreSpec

    infos = {"a" * 64: SourceInfo(400, 300, "gif", 1000, frames=5)}
    executor = DaskExecutor("tcp://127.0.0.1:1", StoreSpec("memory://x"), "fp", infos.get)
    limits = Limits(max_pixels=12_345)
    assert executor._pixels(Job("a.gif", "/a.gif", "a" * 64, (), limits)) == 400 * 300 * 5
    assert executor._pixels(Job("b.jpg", "/b.jpg", "b" * 64, (), limits)) == 12_345


def test_a_worker_never_renders_more_pixels_at_once_than_its_budget(tmp_path, s3):
    """A worker with 2 threads and a budget of 200,000 pixels, jobs of 120,000-144,000 pixels
    each: by the worker's own transition log, it never runs two at once, on a first build
    (sizes unknown: each job asks for the whole budget) or a forced one (sizes known)."""

    def most_at_once(dask_worker):
        """The most render jobs this worker held (executing, or long-running: seceded to put its
        renditions, still holding its pixels) at any moment, and how
        many it ran (its log is in event order: no clocks compared)."""
        running, most, ran = set(), 0, set()
        for entry in dask_worker.state.log:
            key = entry[0]
            if len(entry) != 7 or not str(key).startswith("render_on_worker"):
                continue
            start, final = entry[1], entry[3]
            if final == "executing":
                ran.add(key)
            # A job that seceded to put its renditions (long-running) still holds its pixels.
            if final in ("executing", "long-running"):
                running.add(key)
            elif start in ("executing", "long-running"):
                running.discard(key)
            most = max(most, len(running))
        return most, len(ran)

    from distributed import Client

    cluster = start_cluster(s3.env(), tmp_path / "dask.log", workers=0)
    try:
        cluster.add_worker(threads=2, budget=200_000)
        cluster.wait_for_workers(1)
        site = _cluster_site(tmp_path / "site", s3)
        (site / "images/logo.png").unlink()  # photos only: no two fit in the budget
        for args in (["build"], ["build", "--force"]):
            done = cli(site, *args, env={**s3.env(), "IMGPIPE_SCHEDULER": cluster.address})
            assert done.returncode == 0, done.stderr
        with Client(cluster.address, timeout="10s", set_as_default=False) as client:
            (seen,) = client.run(most_at_once).values()
            (threads,) = [w["nthreads"] for w in client.scheduler_info()["workers"].values()]
    finally:
        cluster.stop()
    assert threads == 2
    assert seen == (1, 12)


def test_bad_scheduler_address_is_a_config_error(tmp_path):
    site = make_site(tmp_path, count=1, extra='remote_cache = "memory://x"')
    done = cli(site, "build", env={"IMGPIPE_SCHEDULER": "localhost"})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error[bad-scheduler]: 'localhost' at --scheduler: expected a dask scheduler address "
        "such as tcp://10.0.0.5:8786"
    )


def test_cluster_rendition_is_trusted_only_when_the_store_holds_the_workers_bytes(tmp_path):
    """The coordinator takes a worker's rendition from the store only if its bytes hash to
    the worker's record; anything else is a failure of that rendition, never an output."""
    import hashlib

    from imgpipe.cluster import _with_bytes
    from imgpipe.model import JobResult, Record, Rendition, SourceInfo
    from imgpipe.store import StoreSpec

    store = StoreSpec((tmp_path / "store").as_uri()).open()

    def record(key: str, data: bytes) -> Record:
        return Record(
            key,
            "jpeg",
            2,
            1,
            len(data),
            80,
            80,
            (("w", "a warning"),),
            hashlib.sha256(data).hexdigest(),
        )

    good, bad = record("a" * 64, b"honest"), record("b" * 64, b"honest")
    store.put_rendition(good, b"honest")
    store.put_rendition(record("b" * 64, b"forged"), b"forged")  # someone else's bytes
    result = _with_bytes(
        store,
        JobResult(
            "x.jpg",
            SourceInfo(2, 1, "jpeg", 9),
            ((good.key, good), (bad.key, bad)),
            where="tcp://w",
        ),
    )
    (_, first), (_, second) = result.renditions
    assert isinstance(first, Rendition) and first.data == b"honest"
    assert first.warnings[0].code == "w" and first.quality == 80
    assert second.code == "blob-missing"


def test_scheduler_without_workers_is_a_clean_error(tmp_path, s3, monkeypatch):
    import imgpipe.cluster as cluster_module
    from imgpipe.errors import ClusterError
    from imgpipe.model import Job, Limits
    from imgpipe.store import StoreSpec

    cluster = start_cluster(s3.env(), tmp_path / "dask.log", workers=0)
    try:
        monkeypatch.setattr(cluster_module, "WORKER_WAIT", 1.0)
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        source = tmp_path / "a.jpg"
        source.write_bytes(b"x")
        executor = cluster_module.DaskExecutor(
            cluster.address, StoreSpec(s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}")), "fp"
        )
        with pytest.raises(ClusterError) as info:
            list(executor.run([Job("a.jpg", str(source), "a" * 64, (), Limits())]))
    finally:
        cluster.stop()
    assert info.value.code == "no-workers"
    assert "has no worker (waited 1 s)" in str(info.value)


def _group_members(pgids: set[int]) -> set[int]:
    """Live (not zombie) processes in these process groups, from /proc."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            members.add(int(stat.parent.name))
    return members


def test_services_die_with_the_process_that_started_them(tmp_path):
    """A pytest run SIGKILLed runs no teardown: the scheduler, the worker (a nanny and its
    child) and moto it started must not outlive it."""
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, os\n"
            "from cluster_support import start_cluster, start_s3\n"
            f"s3 = start_s3({str(tmp_path / 'moto.log')!r})\n"
            f"c = start_cluster(dict(os.environ), {str(tmp_path / 'dask.log')!r}, workers=1)\n"
            "print(s3.proc.pid, c.scheduler.pid, c.workers[0].pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'tests'}:{REPO}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pgids = {int(p) for p in driver.stdout.readline().split()}
        assert len(pgids) == 3, "the driver did not start its services"
        started = _group_members(pgids)
        assert len(started) >= 4  # moto, scheduler, nanny, worker
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()
    deadline = time.monotonic() + 60  # a hang guard: the kernel signals them at once
    while (left := _group_members(pgids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # don't leave them to the next run either
        os.kill(pid, signal.SIGKILL)
    assert not left
