"""Run render jobs on a dask.distributed cluster (`imgpipe build --scheduler tcp://HOST:PORT`).

dask schedules and retries; the shared store (imgpipe/store.py) carries the bytes. The
coordinator puts each source into the store by its sha256 (if absent) and submits the frozen
`Job`; a worker fetches the source, renders it with `executor.render_job`, puts each rendition
under its cache key and answers with a `JobResult` holding `Record`s: metadata only, so no
image bytes pass through the scheduler. The coordinator fetches them back from the store
(`_with_bytes`) and hands the build ordinary results.

Memory: a job asks for the decoded pixels it needs as the dask resource `pixels` (the known
size x frames, else the `limits.max_pixels` bound the engine enforces anyway); a worker started
with `--resources pixels=N` runs only jobs whose sum fits in N. A worker killed mid-build loses
nothing: the scheduler runs its jobs elsewhere, and a rendition put twice is put once.

distributed is imported when a build uses a scheduler: it is an extra (`imgpipe[cluster]`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import ClusterError, Problem, StoreError
from .executor import render_job
from .model import Issue, Job, JobResult, Record, Rendition, SourceInfo, record_of
from .store import Store, StoreSpec

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT = "10s"
WORKER_WAIT = 60.0  # seconds a build waits for a first worker to join
RESOURCE = "pixels"
IN_FLIGHT_PER_THREAD = 4  # enough queued per worker thread that none waits on the coordinator
FETCH_AHEAD = 16  # results whose renditions are being fetched from the store at once
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


class DaskExecutor:
    """Jobs on the cluster at `scheduler`; results in completion order, like ThreadExecutor."""

    def __init__(
        self,
        scheduler: str,
        store: StoreSpec,
        fingerprint: str,
        info_of: Callable[[str], SourceInfo | None] = lambda sha: None,
    ):
        self.scheduler = scheduler
        self.store = store
        self.fingerprint = fingerprint
        self.info_of = info_of
        # Importing distributed takes the coordinator about a second: on a thread, it overlaps
        # whatever the build does before its first job (asking the store for what it holds).
        threading.Thread(target=_import_distributed, daemon=True).start()

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        # distributed logs a lost connection as tracebacks on stderr; the build reports it
        # once, in its own words (ClusterError), so logging stays quiet meanwhile
        # (distributed sets levels on its child loggers, so only a global switch holds.)
        level = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            client = _connect(self.scheduler)
            try:
                yield from self._run(client, jobs)
            finally:
                client.close(timeout=5)
        finally:
            logging.disable(level)

    def _run(self, client: Client, jobs: Iterable[Job]) -> Iterator[JobResult]:
        from distributed import as_completed

        store = self.store.open()
        try:  # a scheduler with no worker would take the jobs and never run them
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise ClusterError.no_workers(self.scheduler, WORKER_WAIT) from None
        workers = client.scheduler_info()["workers"].values()
        budgets = [w.get("resources", {}).get(RESOURCE) for w in workers]
        # No worker advertises a budget: no resource restriction (dask would wait forever).
        budget = max((b for b in budgets if b), default=None)
        threads = sum(w.get("nthreads", 1) for w in workers) or 1
        # Sources go up ahead of their jobs, several at a time, in job order.
        pool = ThreadPoolExecutor(8, thread_name_prefix="imgpipe-upload")

        def upload(job: Job) -> Job:
            store.put_source(job.sha256, job.path)
            return job

        pending = iter(pool.map(upload, jobs))
        running = as_completed(loop=client.loop)
        in_flight = 0
        # The renditions a worker put into the store are fetched here on threads, several
        # results at a time: one round trip per result would otherwise cap the build at a few
        # dozen sources per second, however many workers render.
        fetcher = ThreadPoolExecutor(FETCH_AHEAD, thread_name_prefix="imgpipe-fetch")
        fetching: deque[Future[JobResult]] = deque()
        try:
            while True:
                while in_flight < IN_FLIGHT_PER_THREAD * threads:
                    job = next(pending, None)
                    if job is None:
                        break
                    resources = None
                    if budget:
                        resources = {RESOURCE: min(budget, self._pixels(job))}
                    running.add(
                        client.submit(
                            render_on_worker,
                            job,
                            self.store,
                            self.fingerprint,
                            resources=resources,
                            pure=False,
                        )
                    )
                    in_flight += 1
                while fetching and (
                    fetching[0].done() or len(fetching) >= FETCH_AHEAD or not in_flight
                ):
                    yield fetching.popleft().result()
                if not in_flight:
                    return
                result = next(running).result()
                in_flight -= 1
                fetching.append(fetcher.submit(_with_bytes, store, result))
        except (ClusterError, StoreError):
            raise
        except Exception as exc:  # CancelledError, CommClosedError, KilledWorker...
            raise ClusterError.lost(self.scheduler, exc) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            fetcher.shutdown(wait=False, cancel_futures=True)

    def _pixels(self, job: Job) -> int:
        info = self.info_of(job.sha256)
        if info is None:
            return job.limits.max_pixels
        return info.width * info.height * max(1, info.frames)


def _with_bytes(store: Store, result: JobResult) -> JobResult:
    """The worker's records back into renditions, with their bytes from the store (checked
    against the records), so the build takes a cluster result as it takes a local one."""
    records = {o.key: o for _key, o in result.renditions if isinstance(o, Record)}
    if not records:
        return result
    found = store.renditions(records, records)
    outcomes: list[tuple[str, Rendition | Record | Issue]] = []
    for key, outcome in result.renditions:
        if isinstance(outcome, Record):
            outcome = (
                _rendition(outcome, found[key][1])
                if key in found
                else Issue(
                    "store",
                    "blob-missing",
                    "the worker's rendition is not in the remote cache "
                    "(or does not match its record); run the build again",
                )
            )
        outcomes.append((key, outcome))
    return replace(result, renditions=tuple(outcomes))


def _rendition(record: Record, data: bytes) -> Rendition:
    return Rendition(
        data,
        record.format,
        record.width,
        record.height,
        record.quality,
        record.encoder_quality,
        tuple(Problem(c, m) for c, m in record.warnings),
        record.score,
    )


def _import_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        pass  # _connect says so, in the build's words


def _connect(scheduler: str) -> Client:
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError.missing_extra() from None
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError.unreachable(scheduler, exc) from None


@functools.lru_cache(maxsize=4)
def _open(spec: StoreSpec) -> Store:
    return spec.open()  # one connection pool per worker process and store


@functools.cache
def _worker_setup() -> str:
    """Once per worker process: make it render as a local build does; its engine fingerprint."""
    _malloc_as_local()
    _stop_profiler()
    from . import engine
    from .plan import engine_fingerprint

    return engine_fingerprint(engine.ENGINE_VERSION, engine.versions())


def _malloc_as_local() -> None:
    """dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    mmap threshold at 128 KiB: every image buffer is then mapped, faulted in page by page and
    unmapped again (4-6x the page faults, ~10% more CPU per render, bench_cluster.py). Back to
    the thresholds glibc settles on by itself in a local build: 32 MiB, trimming above 64 MiB."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return  # glibc's own dynamic thresholds: leave them
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to undo


def _stop_profiler() -> None:
    """dask's statistical profiler walks every thread's stack each 10 ms on the worker's event
    loop; under libvips renders that costs about 20% more CPU (bench_cluster.py). Workers that
    render for imgpipe stop it (as `distributed.worker.profile.enabled: false` would)."""
    from distributed import get_worker

    worker = get_worker()
    for name in ("profile", "profile-cycle"):
        callback = worker.periodic_callbacks.get(name)
        if callback is not None:
            worker.loop.add_callback(callback.stop)  # tornado callbacks: from the loop only


def render_on_worker(job: Job, spec: StoreSpec, fingerprint: str) -> JobResult:
    """Runs on a dask worker: source from the store, renditions into it, metadata back.

    Only the render needs one of the worker's threads: the job leaves the thread pool while
    it fetches its source and while it puts its renditions (dask's secede/rejoin), so the
    worker's next queued job fetches its source while this one renders. A job keeps its
    `pixels` throughout, so the budget still bounds what a worker holds."""
    from distributed import get_worker, rejoin, secede

    where = get_worker().address
    if _worker_setup() != fingerprint:
        # Other library versions make other bytes: under this plan's keys they would lie.
        return JobResult(
            job.relpath,
            None,
            (),
            Issue(
                "internal",
                "engine-mismatch",
                f"worker {where} runs other libvips/encoder versions "
                "than the coordinator; install the same imgpipe environment on every worker",
            ),
            where,
        )
    from . import engine

    store = _open(spec)
    secede()
    data = store.source(job.sha256)
    rejoin()  # waits for a free thread of the worker's pool
    if data is None:
        return JobResult(
            job.relpath,
            None,
            (),
            Issue("read", "source-missing", "the source is not in the remote cache"),
            where,
        )
    result = render_job(job, data, engine)
    secede()  # the puts wait on the store, not the CPU
    made = [(record_of(key, o), o.data) for key, o in result.renditions if isinstance(o, Rendition)]
    written = dict(zip((r.key for r, _ in made), store.put_renditions(made), strict=True))
    records = {r.key: r for r, _ in made}
    outcomes = []
    for key, outcome in result.renditions:
        # A blob already under this key stays (write once). If it is not this rendition
        # (a hostile or broken writer), this one travels inline rather than being lost.
        if key in records and (written[key] or store.holds(records[key])):
            outcome = records[key]
        outcomes.append((key, outcome))
    if result.info is not None:
        store.put_info(job.sha256, result.info)
    return replace(result, renditions=tuple(outcomes), where=where)
