"""`imgpipe build`, as a numbered recipe:

0. if the inputs are those of the last clean build (its stamp) and every file it wrote is
   untouched, stop: the most common build of all does no more than a stat per file;
1. discover sources, hash what the stat cache does not know, plan every rendition;
2. skip renditions whose cache key has a record (output intact, or a blob to restore from),
   or, with `remote_cache`, a verified blob in the shared store (imgpipe/store.py);
3. render the rest, sources in parallel, one decode per source: on local threads, or on a
   dask cluster with `scheduler` (imgpipe/cluster.py);
4. write outputs atomically (only when their bytes differ), committing state per source;
5. write the manifest (last of the outputs, so it never names a missing file);
6. write the HTML snippets, and the report page (`report`);
7. remove stale outputs, and retire the encoded results no longer used (kept within
   `cache_keep` bytes, so an undo costs a copy: state.py).

Nothing is written when nothing changed: every file is compared with what is on disk (by its
recorded stat, else by its bytes) before it is replaced.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import manifest as mf
from . import report, skips
from .alt import alt_text, camera_name
from .config import Config
from .executor import ProcessExecutor, ThreadExecutor
from .files import remove_temp_files
from .geometry import compute
from .html import BUILTIN_TEMPLATES, TEMPLATE, Renderer, snippet_path
from .image_data import unknown_images
from .lock import Lock
from .model import (
    Engine,
    Events,
    Issue,
    Job,
    JobResult,
    Origin,
    PlannedItem,
    Rendition,
    SourceInfo,
    Summary,
    record_of,
)
from .options import parse
from .outputs import Outputs, storage_error
from .plan import (
    Plan,
    SourcePlan,
    build_stamp,
    engine_fingerprint,
    make,
)
from .results import Results, replay, summary
from .sources import Skipped, SourceFile, discover, hasher, scan
from .state import State, scope_of
from .store import Store, StoreSpec


def default_engine() -> Engine:
    # Cheap: the engine package loads libvips only when a source is opened (engine/__init__).
    from . import engine

    return engine


def fingerprint_of(engine: Engine, state: State | None = None) -> str:
    """The engine's part of every cache key. `versions()` loads libvips (most of a no-op
    build's time), so the state remembers the fingerprint under the engine's cheap `identity()`
    (package versions, which change whenever the versions can) and only a new identity, or
    an engine that has none, asks `versions()`."""
    identity = engine.identity()
    if identity is None or state is None:
        return engine_fingerprint(engine.ENGINE_VERSION, engine.versions())
    key = json.dumps([engine.ENGINE_VERSION, identity], sort_keys=True)
    known = json.loads(state.get_meta("engine") or "[null, null]")
    if known[0] == key:
        return str(known[1])
    fingerprint = engine_fingerprint(engine.ENGINE_VERSION, engine.versions())
    if not state.readonly:
        state.set_meta("engine", json.dumps([key, fingerprint]))
    return fingerprint


def plan_sources(
    config: Config, state: State, fingerprint: str, files: list[SourceFile] | None = None
) -> Plan:
    files = discover(config) if files is None else files
    return make(config, files, hasher(state, config.limits.max_bytes), fingerprint)


def dry_run(config: Config, engine: Engine | None = None, force: bool = False) -> list[PlannedItem]:
    """The plan as it would run now. Reads sources it must hash; writes nothing."""
    with State(config.cache_dir, readonly=True, scope=scope_of(config)) as state:
        fingerprint = fingerprint_of(engine or default_engine(), state)
        plan = plan_sources(config, state, fingerprint)
        items = []
        for sp in plan.sources:
            info = state.info(sp.sha256)
            records = {} if force else {k: r for k in sp.keys if (r := state.record(k))}
            fitted = _fitted(sp, info)
            gone = skips.doomed(fitted, info, records) if info else {}
            for r in fitted.renditions:
                if r.key in gone:  # its format lost at its largest width: not encoded
                    continue
                record = records.get(r.key)
                fmt = record.format if record else (None if r.format == "auto" else r.format)
                items.append(
                    PlannedItem(
                        sp.source.relpath,
                        r.label,
                        r.options,
                        r.key,
                        record is not None,
                        sp.output_name(r, fmt) if fmt else None,
                        _planned_size(r.options, info),
                    )
                )
        return items


def _planned_size(options: str, info: SourceInfo | None) -> tuple[int, int] | None:
    """Geometry needs only the header; a trim depends on pixels, so its size is unknown."""
    recipe = parse(options)
    if info is None or recipe.trim:
        return None
    g = compute(recipe, info.width, info.height)
    return g.width, g.height


@dataclass
class _Run:
    """What one build works with, and the results it gathers (imgpipe/results.py)."""

    config: Config
    state: State
    outputs: Outputs
    results: Results = field(default_factory=Results)
    store: Store | None = None  # the shared store (remote_cache)
    remote: set[str] = field(default_factory=set)  # keys this build took from the store


def build(
    config: Config,
    *,
    force: bool = False,
    gc: bool = True,
    wait: bool = True,
    jobs: int | None = None,
    engine: Engine | None = None,
    events: Events | None = None,
    processes: bool = False,
) -> Summary:
    """Run a build (see the module docstring). Raises ConfigError, BuildLocked, and
    StorageError when a disk is full or read-only.

    `processes`: render in worker processes (executor.ProcessExecutor) rather than threads,
    with the default engine. Python's worker processes import the `__main__` script again, so
    only a caller that knows its script is guarded by `if __name__ == "__main__":` (the CLI)
    asks for them."""
    try:
        engine = engine or default_engine()
        executor = ProcessExecutor if processes and engine is default_engine() else ThreadExecutor
        return _locked_build(config, force, gc, wait, jobs, engine, events or Events(), executor)
    except (OSError, sqlite3.OperationalError) as exc:
        raise storage_error(exc, config.cache_dir) or exc from None


def _locked_build(
    config: Config,
    force: bool,
    gc: bool,
    wait: bool,
    jobs: int | None,
    engine: Engine,
    events: Events,
    local: type[ThreadExecutor | ProcessExecutor] = ThreadExecutor,
) -> Summary:
    started = time.monotonic()
    lock = Lock(config.cache_dir)
    lock.acquire(wait=wait, on_wait=events.waiting)
    try:
        with State(config.cache_dir, scope=scope_of(config)) as state:
            fingerprint = fingerprint_of(engine, state)
            # The last build was killed (or the state is new, so we cannot know): sweep the
            # temp files a killed build may have left next to outputs.
            if state.get_meta("running") != "0":
                for directory in {config.output, config.snippets, config.cache_dir / "blobs"}:
                    if directory.is_dir():
                        remove_temp_files(directory)
            files, skipped = scan(config)
            templates = [p / TEMPLATE for p in (config.templates, BUILTIN_TEMPLATES) if p]
            stamp = build_stamp(config, files, fingerprint, templates, skipped)
            # Fast path for the most common build of all, the one with nothing to do: same
            # inputs as the last clean build and every file it wrote untouched.
            if (
                not force
                and state.get_meta("stamp") == stamp
                and state.all_written_intact(str(config.root))
            ):
                events.start(len(files), 0)
                return replay(state.get_meta("summary"), started)
            state.set_meta("stamp", "")
            state.set_meta("running", "1")
            summary = _build(
                config,
                state,
                engine,
                fingerprint,
                force,
                gc,
                jobs or config.jobs,
                events,
                started,
                files,
                skipped,
                local,
            )
            if summary.ok and gc:
                state.set_meta("summary", json.dumps(asdict(summary)))
                state.set_meta("stamp", stamp)
            state.set_meta("running", "0")
            return summary
    finally:
        lock.release()


def _build(
    config: Config,
    state: State,
    engine,
    fingerprint: str,
    force: bool,
    gc: bool,
    jobs: int,
    events: Events,
    started: float,
    files: list[SourceFile],
    skipped: list[Skipped],
    local: type[ThreadExecutor | ProcessExecutor],
) -> Summary:
    run = _Run(config, state, Outputs(config.root, state))
    spec = (
        StoreSpec(config.remote_cache, config.remote_cache_options) if config.remote_cache else None
    )
    # First: a cluster executor starts importing distributed (a second of CPU) on a thread,
    # which overlaps hashing the sources (hashlib and reads let go of the GIL).
    executor = _executor(run, engine, fingerprint, jobs, spec, local)
    plan = plan_sources(config, state, fingerprint, files)
    # A source whose header is known gets only the renditions that fit it (SourcePlan.fitting);
    # a new one is fitted once the job has read its header (Job.only_animated, _take_result).
    plan = replace(plan, sources=tuple(_fitted(sp, state.info(sp.sha256)) for sp in plan.sources))
    state.forget_stats({sp.source.relpath for sp in plan.sources})
    state.commit()
    if spec is not None:
        run.store = spec.open()
    for s in (*skipped, *plan.skipped):
        (run.results.failures if s.failed else run.results.notes).append(s.issue())
    for problem in unknown_images(config.images, (f.relpath for f in files)):
        run.results.notes.append(Issue("config", problem.code, problem.message))

    # 2. Which keys must be rendered. A record is enough when its outputs are intact or its
    # blob can restore them; `--force` ignores records.
    to_render: dict[str, tuple[str, ...]] = {}
    by_rel = {sp.source.relpath: sp for sp in plan.sources}
    for sp in plan.sources:
        missing = tuple(k for k in sp.keys if force or not _usable(run, sp, k))
        if missing or state.info(sp.sha256) is None:
            to_render[sp.source.relpath] = missing
    if run.store is not None and not force and to_render:
        _fill_from_store(run, by_rel, to_render)
    for rel in list(to_render):  # what the cached tops of its families doom is not rendered
        sp, info = by_rel[rel], state.info(by_rel[rel].sha256)
        gone = _doomed(run, sp, info, to_render[rel]) if info else {}
        to_render[rel] = tuple(k for k in to_render[rel] if k not in gone)
        if not to_render[rel] and info is not None:
            del to_render[rel]
    events.start(
        len(plan.sources),
        sum(r.key in set(keys) for rel, keys in to_render.items() for r in by_rel[rel].renditions),
    )

    entries: dict[str, dict[str, Any]] = {}
    for sp in plan.sources:  # cached sources first: quick, and they free the terminal early
        if sp.source.relpath not in to_render:
            _finish_source(run, sp, state.info(sp.sha256), {}, {}, entries)
            events.source_done(sp.source.relpath, 0, 0)
    # Biggest sources first: a large photo started last would leave the other workers idle
    # at the end of the build.
    order = sorted(to_render, key=lambda rel: -by_rel[rel].source.size)
    jobs_list = [
        Job(
            rel,
            by_rel[rel].source.path,
            by_rel[rel].sha256,
            tuple((k, _options_of(by_rel[rel], k)) for k in to_render[rel]),
            config.limits,
            svg=by_rel[rel].svg,
            only_animated=by_rel[rel].only_for(animated=True),
            only_still=by_rel[rel].only_for(animated=False),
            plan=by_rel[rel],
            known=tuple(
                record
                for k in skips.tops(by_rel[rel])
                if k not in to_render[rel] and (record := state.record(k))
            ),
        )
        for rel in order
    ]
    for result in executor.run(jobs_list):
        _take_result(run, by_rel[result.relpath], result, entries)
        state.commit()
        events.source_done(result.relpath, *_counts(by_rel[result.relpath], result))

    # 5. Manifest, then 6. snippets: both derived from the entries only.
    encoded = {rel: mf.encode_entry(e) for rel, e in entries.items()}
    data = mf.dumps(config.base_url, encoded)
    run.outputs.sync(
        *run.outputs.where(config.manifest.parent, config.manifest.name),
        hashlib.sha256(data).hexdigest(),
        data,
    )
    _write_snippets(run, entries, encoded)
    if config.report:
        so_far = summary(run.results, config, plan, run.outputs, started)
        text = report.render(config.report, so_far, entries, config.output, timed=False)
        where = run.outputs.where(config.report.parent, config.report.name)
        run.outputs.sync(*where, hashlib.sha256(text).hexdigest(), text)
    state.commit()

    # 7. Stale outputs: only files this tool wrote, and only after everything else is in place.
    if gc:
        run.outputs.remove_stale()
        state.drop_records({k for sp in plan.sources for k in sp.keys}, config.cache_keep)
        state.commit()
    return summary(run.results, config, plan, run.outputs, started)


def _executor(
    run: _Run,
    engine: Engine,
    fingerprint: str,
    jobs: int,
    store: StoreSpec | None,
    local: type[ThreadExecutor | ProcessExecutor],
):
    if not run.config.scheduler:
        return local(jobs, engine)
    from .cluster import DaskExecutor

    assert store is not None  # config.py requires remote_cache with a scheduler
    return DaskExecutor(run.config.scheduler, store, fingerprint, run.state.info)


def _fill_from_store(
    run: _Run, by_rel: dict[str, SourcePlan], to_render: dict[str, tuple[str, ...]]
) -> None:
    """2b. What this machine lacks, the shared store may hold: verified renditions become
    local records and blobs (as if rendered here), so step 4 copies them like cached ones."""
    assert run.store is not None
    wanted: dict[str, set[str]] = {}
    for rel, keys in to_render.items():
        wanted.setdefault(by_rel[rel].sha256, set()).update(keys)
    run.remote = run.store.refill(run.state, wanted)
    for rel in list(to_render):
        missing = tuple(k for k in to_render[rel] if k not in run.remote)
        if missing or run.state.info(by_rel[rel].sha256) is None:
            to_render[rel] = missing
        else:
            del to_render[rel]


def _usable(run: _Run, sp: SourcePlan, key: str) -> bool:
    """A record is enough when every output of its key is intact, or its blob can restore
    them (outputs are checked first: that needs no look at the cache dir)."""
    record = run.state.record(key)
    if record is None:
        return False
    for r in sp.renditions:
        if r.key == key:
            path, rel = run.outputs.where(run.config.output, sp.output_name(r, record.format))
            if not run.outputs.intact(path, rel, key):
                return run.state.has_blob(record)
            run.outputs.verified.add(rel)
    return True


def _doomed(
    run: _Run, sp: SourcePlan, info: SourceInfo, missing: tuple[str, ...]
) -> dict[str, str]:
    """Keys that need no encoding: their format lost at its largest width (skips.doomed),
    judged by the records of what is not `missing`."""
    records = {k: r for k in sp.keys if k not in missing and (r := run.state.record(k))}
    return skips.doomed(sp, info, records)


def _fitted(sp: SourcePlan, info: SourceInfo | None) -> SourcePlan:
    return sp if info is None else sp.fitting(animated=info.frames > 1)


def _options_of(sp: SourcePlan, key: str) -> str:
    return next(r.options for r in sp.renditions if r.key == key)


def _take_result(
    run: _Run, sp: SourcePlan, result: JobResult, entries: dict[str, dict[str, Any]]
) -> None:
    rel = sp.source.relpath
    if result.failure or result.info is None:
        failure = result.failure or Issue("internal", "no-info", "no source info")
        run.results.failures.append(replace(failure, source=rel))
        return
    run.state.put_info(sp.sha256, result.info)
    sp = _fitted(sp, result.info)
    fresh: dict[str, bytes] = {}
    failed: dict[str, Issue] = {}
    uploads = []
    for key, outcome in result.renditions:
        if isinstance(outcome, Rendition):
            record = record_of(key, outcome)
            run.state.put_record(record, outcome.data)
            uploads.append((record, outcome.data))
            fresh[key] = outcome.data
        elif isinstance(outcome, Issue):
            failed[key] = outcome
    # A worker's renditions are in the store already (cluster.py fetched them back from it).
    if run.store is not None and result.where == "local":
        run.store.put_renditions(uploads)
        run.store.put_info(sp.sha256, result.info)  # last: the store's refill relies on it
    if (
        failed
        and len(failed) == len(sp.keys)
        and len({(f.stage, f.code) for f in failed.values()}) == 1
    ):
        # Every rendition failed the same way (a truncated file fails at decode, not at
        # open): that is the source failing; one line says it, and it is left out entirely.
        # The same way is the same stage and code: libvips' own words in the message may
        # differ between two decodes of the same bytes (the executor renders in two passes).
        f = next(iter(failed.values()))
        run.results.failures.append(replace(f, source=rel))
        return
    for r in sp.renditions:
        if r.key in failed:
            f = failed[r.key]
            run.results.failures.append(replace(f, source=rel, label=r.label))
    _finish_source(run, sp, result.info, fresh, failed, entries, result.where)


def _finish_source(
    run: _Run,
    sp: SourcePlan,
    info: SourceInfo,
    fresh: dict[str, bytes],
    failed: dict[str, Issue],
    entries: dict[str, dict[str, Any]],
    where: str = "local",
) -> None:
    """Write this source's outputs and keep its manifest entry."""
    known = {r.key: rec for r in sp.renditions if (rec := run.state.record(r.key))}
    # Not encoded, or left from a build that encoded them: either way neither written nor
    # listed, so the outputs never depend on what the cache happens to hold.
    skipped = skips.doomed(sp, info, {k: r for k, r in known.items() if k not in failed})
    gone = mf.collapsed(sp, {k: r for k, r in known.items() if k not in skipped})
    if gone:
        _note_collapsed(run, sp, info, gone)
        for r in sp.renditions:
            if r.label in gone:
                run.state.use(r.key)  # kept: the next build finds it cached
        sp = replace(sp, renditions=tuple(r for r in sp.renditions if r.label not in gone))
    records = {}
    for r in sp.renditions:
        record = None if r.key in failed or r.key in skipped else run.state.record(r.key)
        if record is None:
            continue
        path, rel = run.outputs.where(run.config.output, sp.output_name(r, record.format))
        if r.key in fresh:
            run.results.built += 1
        else:
            run.results.cached += 1
        run.results.origins.append(
            Origin(
                sp.source.relpath,
                r.label,
                where if r.key in fresh else "remote-cache" if r.key in run.remote else "cache",
            )
        )
        try:
            run.outputs.sync(
                path, rel, r.key, fresh.get(r.key), load=lambda k=r.key: _blob(run.state, k)
            )
        except OSError as exc:
            if storage_error(exc):
                raise
            # This source's own trouble (a name the file system refuses, a directory in the
            # way): reported; its entry stays out of the manifest, the others go on.
            run.results.failures.append(
                Issue(
                    "write",
                    "unwritable",
                    f"cannot write {rel} ({exc.strerror or exc})",
                    r.label,
                    sp.source.relpath,
                )
            )
            return
        records[r.key] = record
        run.state.use(r.key)
    entries[sp.source.relpath] = mf.source_entry(sp, info, records, run.config.base_url, skipped)
    # The summary's figures and warnings from the records themselves, as the manifest's are.
    run.results.warnings.extend(mf.warnings_of(sp, records))
    run.results.bytes_before += info.bytes
    run.results.bytes_after += sum(record.bytes for record in records.values())
    run.results.bytes_served += mf.served_bytes(entries[sp.source.relpath])


def _note_collapsed(run: _Run, sp: SourcePlan, info: SourceInfo, gone: dict[str, str]) -> None:
    """The info line of a source whose family widths would enlarge it (manifest.collapsed)."""
    widths = {r.label: r.width or 0 for r in sp.renditions}
    asked = sorted({widths[label] for pair in gone.items() for label in pair})
    run.results.notes.append(
        Issue(
            "info",
            "widths-collapsed",
            f"{info.width} px wide, so widths {', '.join(map(str, asked))} would enlarge it: "
            f"they make one candidate at its own width (labelled {asked[0]})",
            source=sp.source.relpath,
        )
    )


def _blob(state: State, key: str) -> bytes:
    data = state.read_blob(key)
    if data is None:
        raise RuntimeError(f"cache blob {key} vanished during the build; run it again")
    return data


def _write_snippets(run: _Run, entries: dict[str, dict[str, Any]], encoded: dict[str, str]) -> None:
    if not any(entry["srcsets"] for entry in entries.values()):
        return
    renderer = Renderer(run.config.templates)
    template = hashlib.sha256(renderer.fingerprint().encode()).hexdigest()
    for rel, entry in sorted(entries.items()):
        alt = alt_text(entry, rel)
        if entry.get("alt") is None and camera_name(rel) and entry["srcsets"]:
            run.results.notes.append(
                Issue(
                    "snippets",
                    "alt-missing",
                    "a camera's file name says nothing about the picture, so its snippets "
                    f'have alt=""; describe it with alt in [images."{rel}"] (or in the '
                    "Markdown or template that shows it)",
                    source=rel,
                )
            )
        for group in entry["srcsets"]:
            path, path_rel = run.outputs.where(run.config.snippets, snippet_path(rel, group))
            # Rendering 10,000 templates is the slow part of a no-op build; the fingerprint of
            # everything a snippet depends on lets unchanged ones be skipped unrendered.
            fp = hashlib.sha256(f"{template}\0{group}\0{alt}\0{encoded[rel]}".encode())
            run.outputs.sync(
                path,
                path_rel,
                fp.hexdigest(),
                None,
                load=lambda e=entry, g=group, a=alt: renderer.picture(e, g, alt=a).encode(),
            )


def _counts(sp: SourcePlan, result: JobResult) -> tuple[int, int]:
    if result.failure:
        return 0, len(sp.renditions)
    ok = {k for k, o in result.renditions if not isinstance(o, Issue)}
    bad = {k for k, o in result.renditions if isinstance(o, Issue)}
    return (sum(r.key in ok for r in sp.renditions), sum(r.key in bad for r in sp.renditions))
