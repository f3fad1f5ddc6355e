"""Run render jobs: a job is plain data, a result is a record, so the runner is swappable.

`ProcessExecutor` runs jobs in local worker processes (`imgpipe build`): the quality search's
numpy work (metric.py, butteraugli.py) holds the GIL often enough that two render threads got
~1.4x one thread's work done, against ~2x for processes. `ThreadExecutor` runs jobs on local
threads: for watch, the plugins and the Python API (build.build explains why), an engine other
than the default one, and a single job. The dask.distributed runner (imgpipe/cluster.py) calls
`render_job` on its workers with the same frozen `Job` and `JobResult`.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import select
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool

from . import skips
from .errors import ImageError, ImgpipeError
from .model import Engine, Issue, Job, JobResult, Rendition, SourceHandle, record_of
from .options import parse


def run_job(job: Job, engine: Engine) -> JobResult:
    """Render one job. Never raises: every problem becomes an Issue in the result."""
    try:
        with open(job.path, "rb") as fh:
            data = fh.read(job.limits.max_bytes + 1)
    except OSError as exc:
        return JobResult(job.relpath, None, (), Issue("read", "unreadable", str(exc)))
    # The plan's keys were made from the hash; if the file changed since, those keys would
    # label different pixels. Rendering from these very bytes rules that out.
    too_big = len(data) > job.limits.max_bytes
    if not too_big and hashlib.sha256(data).hexdigest() != job.sha256:
        return JobResult(
            job.relpath,
            None,
            (),
            Issue(
                "read", "source-changed", "the file changed during the build; run the build again"
            ),
        )
    # Over the byte limit, the engine gets the path so it reports the limit in its words.
    return render_job(job, job.path if too_big else data, engine)


def render_job(job: Job, source_data: bytes | str, engine: Engine) -> JobResult:
    """Render a job from its source's bytes (or path). Never raises. A cluster worker calls
    this with bytes fetched from the store (imgpipe/cluster.py)."""
    try:
        source = engine.open_source(source_data, job.limits, svg_mode=job.svg)
        skip = job.only_still if source.info.frames > 1 else job.only_animated
        items = [(key, options) for key, options in job.items if key not in skip]
        outcomes = _render_items(source, items, job)
        info = source.info  # after rendering, which adds the placeholder
        results = tuple(
            (key, outcome if isinstance(outcome, Rendition) else _failure(outcome))
            for key, _options in items
            if (outcome := outcomes.get(key)) is not None
        )
    except ImgpipeError as exc:
        return JobResult(job.relpath, None, (), _failure(exc))
    except Exception as exc:  # an engine bug must not take the other sources down
        return JobResult(
            job.relpath, None, (), Issue("internal", type(exc).__name__, f"{exc} ({_where(exc)})")
        )
    return JobResult(job.relpath, info, results)


def _render_items(
    source: SourceHandle, items: list[tuple[str, str]], job: Job
) -> dict[str, Rendition | ImageError]:
    """Outcomes by key. The largest width of each format first, when the plan says some
    group could lose a modern format there; then the rest but what that loss dooms
    (skips.doomed), which is left out. With no items the render only decodes: the source
    info gets its placeholder."""
    plan = job.plan and job.plan.fitting(animated=source.info.frames > 1)
    tops = skips.tops(plan) if plan else frozenset()
    first = [(k, o) for k, o in items if k in tops] if tops else items
    outcomes = dict(
        zip([k for k, _ in first], source.render_all([parse(o) for _, o in first]), strict=True)
    )
    rest = [(k, o) for k, o in items if k not in outcomes]
    if plan and rest:
        records = {r.key: r for r in job.known} | {
            k: record_of(k, o) for k, o in outcomes.items() if isinstance(o, Rendition)
        }
        gone = skips.doomed(plan, source.info, records)
        rest = [(k, o) for k, o in rest if k not in gone]
    if rest:
        outcomes.update(
            zip([k for k, _ in rest], source.render_all([parse(o) for _, o in rest]), strict=True)
        )
    return outcomes


def _failure(exc: BaseException) -> Issue:
    if isinstance(exc, ImgpipeError):
        # The engine names a buffer source "<bytes>"; the report already names the path.
        text = "; ".join(p.message.removeprefix("<bytes>: ") for p in exc.problems)
        return Issue(getattr(exc, "stage", "load"), exc.code, text)
    return Issue("internal", type(exc).__name__, str(exc))


def _where(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"


class ThreadExecutor:
    """Sources in parallel on `jobs` threads. At most 2 x jobs are in flight, so finished
    renditions never pile up in memory while the main thread writes them."""

    def __init__(self, jobs: int, engine: Engine):
        self.jobs = max(1, jobs)
        self.engine = engine

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="imgpipe") as pool:
            for _job, future in _in_flight(
                lambda job: pool.submit(run_job, job, self.engine), self.jobs, iter(jobs)
            ):
                yield future.result()


class ProcessExecutor(ThreadExecutor):
    """Sources in parallel in `jobs` worker processes with the default engine, started by
    a fork server that has numpy, OpenCV and libvips loaded (forking it costs milliseconds);
    one job, or one worker, runs on a thread here instead.

    A worker that dies (the out-of-memory killer, a crash in a codec) breaks its pool: the
    jobs that were in it are run again one at a time, each alone in a new pool, and one that
    kills that one too fails alone (`worker-died`); the rest go on in a new pool."""

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        todo = list(jobs)
        workers = min(self.jobs, len(todo))
        if workers < 2:
            yield from super().run(todo)
            return
        pending = iter(todo)
        while True:
            lost: list[Job] = []
            with _pool(workers) as pool:
                for job, future in _in_flight(
                    lambda job: pool.submit(_run_default, job), workers, pending
                ):
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        lost.append(job)
            if not lost:
                return
            for job in lost:
                with _pool(1) as alone:
                    try:
                        yield alone.submit(_run_default, job).result()
                    except BrokenProcessPool:
                        yield JobResult(
                            job.relpath, None, (), Issue("render", "worker-died", _DIED)
                        )


_DIED = (
    "the process rendering this source ended while it worked, twice (killed, out of memory, "
    "or a crash in a codec); other sources were not affected; if it keeps happening, "
    "check the file or lower `jobs`"
)


def _pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["imgpipe.executor", "imgpipe.engine.source"])
    return ProcessPoolExecutor(workers, context, _exit_with, (os.getpid(),))


def _run_default(job: Job) -> JobResult:
    from . import engine

    return run_job(job, engine)


def _exit_with(build: int) -> None:
    """A worker outlives no build, however it ends (even SIGKILL): else it would render on and
    hold the build's stdout open. The fork server cannot see to that: it lives as long as any
    of its workers do."""
    threading.Thread(target=_await_end, args=(build,), daemon=True).start()


def _await_end(pid: int) -> None:
    try:
        with os.fdopen(os.pidfd_open(pid)) as process:  # readable once the process has ended
            select.select([process], [], [])
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): look every second
        while _exists(pid):
            time.sleep(1)
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _in_flight(
    submit: Callable[[Job], Future[JobResult]], workers: int, pending: Iterator[Job]
) -> Iterator[tuple[Job, Future[JobResult]]]:
    """The `pending` jobs submitted, each with its done future, in completion order, at most
    2 x `workers` at once. Once a (broken) pool refuses a job, that job comes back with the
    pool's error and no more are taken from `pending`: the caller may go on with the rest."""
    in_flight: dict[Future[JobResult], Job] = {}
    refused = False
    try:
        while True:
            while not refused and len(in_flight) < 2 * workers:
                job = next(pending, None)
                if job is None:
                    break
                try:
                    in_flight[submit(job)] = job
                except BrokenProcessPool as exc:
                    refused, future = True, Future[JobResult]()
                    future.set_exception(exc)
                    in_flight[future] = job
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield in_flight.pop(future), future
    finally:
        for future in in_flight:
            future.cancel()
