"""`imgpipe watch`: keep the output right while people edit (the only watchdog importer).

A watcher runs one full incremental build, then turns filesystem events into *rounds*: each
round is a plain `build()`. The stat cache makes a build where one file changed cost a stat
walk plus that file's renders (a no-op round over 200 sources takes well under 0.1 s), so
rounds need no list of "affected sources": the build already skips every unchanged source,
removes the outputs of deleted ones and rewrites the manifest and snippets only when their
bytes change. Rounds therefore always end equal to a clean build of the tree as it was.

Events only decide *when* to build:
- debounce: a round starts once no event came for `debounce` seconds (an editor's save, a
  folder of photos dropped at once, become one round), or `max_wait` after the first event;
- settle: a touched file whose mtime is younger than `settle` is still being written, so the
  round waits for it (up to `max_wait`);
- rescan: events can be lost (inotify queue overflow, a symlinked file edited elsewhere), so
  every `rescan` seconds the stat fields of all sources are compared with those seen when the
  last round started; any difference starts a round.

The engine reads source bytes itself (never a file name), so a file replaced under the same
name is never served from libvips' per-file-name cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from .build import Events, Summary, build, default_engine
from .config import CONFIG_FILE, PYPROJECT, Config, load
from .errors import ConfigError
from .plan import discover
from .report import human_bytes
from .state import BuildLocked

# Opened / closed-without-writing are left out on purpose: the build reads every changed
# source, and those reads would otherwise start the next round, forever. Directory
# "modified" events only repeat what the events of their entries say.
_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent,
           FileClosedEvent, FileAttribEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent]

_CONFIG = "\0config"  # the snapshot's entry for the config file(s): never a source path
_LOCK_RETRY = 0.5  # seconds before retrying a round that found another build running

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """One build the watcher ran, as handed to `on_round`."""

    number: int  # 0 is the initial build
    reasons: tuple[str, ...]  # start, change, config, templates, rescan, retry
    changed: tuple[str, ...]  # source-relative paths events named (sorted; may be empty)
    summary: Summary | None  # None when no build ran or it did not finish
    error: str | None  # why the round did not build (config, locked, stopped, exception)
    seconds: float  # wall time of the round
    engine_seconds: float  # time inside the engine (decode, resize, encode), summed over threads
    finished: float  # time.monotonic() when the round ended


class _Stopped(Exception):
    """Raised from the build's progress hooks to abort a round between two sources."""


class _StopEvents(Events):
    # The build commits per source and writes atomically, so stopping between two sources
    # leaves what a killed build leaves: whole files, an older manifest, the lock released.
    def __init__(self, stop: threading.Event):
        self.stop = stop

    def start(self, sources: int, to_render: int) -> None:
        if self.stop.is_set():
            raise _Stopped

    def source_done(self, relpath: str, built: int, failed: int) -> None:
        if self.stop.is_set():
            raise _Stopped


class _TimedEngine:
    """The real engine, adding up the seconds spent inside it so a round can report its
    overhead (latency minus encode time) separately."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.ENGINE_VERSION = engine.ENGINE_VERSION
        self.seconds = 0.0
        self._lock = threading.Lock()

    def versions(self) -> dict[str, str]:
        return self.engine.versions()

    def timed(self, fn: Callable, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started

    def open_source(self, source: bytes | str, limits: Any) -> _TimedSource:
        return _TimedSource(self, self.timed(self.engine.open_source, source, limits))


class _TimedSource:
    def __init__(self, timer: _TimedEngine, source: Any):
        self._timer, self._source = timer, source

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._source, name)  # AttributeError keeps `hasattr` honest
        if name in ("render", "render_all"):
            return lambda *args: self._timer.timed(value, *args)
        return value


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.watcher._note([os.fsdecode(p) for p in paths if p])


class Watcher:
    """Build, then rebuild on changes until `stop()`. Thread-safe; rounds run on one thread.

    `on_round(round)` is called on that thread after every round; exceptions in it are
    logged. `log_line(text)` receives the human-readable lines (default: the logging module).
    """

    def __init__(self, config_path: Path | str | None = None, *,
                 directory: Path | str | None = None,
                 on_round: Callable[[Round], None] | None = None,
                 log_line: Callable[[str], None] | None = None,
                 debounce: float = 0.2, max_wait: float = 3.0, settle: float = 0.2,
                 rescan: float = 30.0, jobs: int | None = None,
                 engine: ModuleType | Any | None = None):
        # Resolved now: events carry absolute paths, and the cwd is not ours to rely on later.
        self.config_path = Path(config_path).resolve() if config_path else None
        self.directory = Path(directory) if directory else None
        self.on_round = on_round
        self.log_line = log_line or log.info
        self.debounce, self.max_wait, self.settle, self.rescan = debounce, max_wait, settle, rescan
        self.jobs = jobs
        self._engine = engine
        self._timer = _TimedEngine(engine) if engine is not None else None
        self.config: Config | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._watches: dict[tuple[str, bool], Any] = {}
        self._rounds: list[Round] = []
        self._busy = False
        self._done = False
        # Pending work, guarded by _cond.
        self._changed: set[str] = set()
        self._reasons: set[str] = set()
        self._first_event = 0.0
        self._last_event = 0.0
        self._snapshot: dict[str, tuple[int, int, int, int]] = {}

    # -- public API ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the config (ConfigError if invalid: there is no last good one yet), start
        watching, and run the initial build on the watcher thread."""
        self.config = load(self.config_path, self.directory)
        for problem in self.config.warnings:
            self.log_line(f"warning[{problem.code}]: {problem.message}")
        if self._timer is None:
            self._timer = _TimedEngine(default_engine())
        self._observer = Observer()
        self._sync_watches()  # before the first build, so edits during it are not missed
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="imgpipe-watch")
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; a round in progress stops after the source it is writing."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._observer is not None:
            self._observer.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the watcher thread to end (after `stop()`); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rounds(self) -> list[Round]:
        with self._cond:
            return list(self._rounds)

    @property
    def round_count(self) -> int:
        with self._cond:
            return len(self._rounds)

    def wait_idle(self, min_rounds: int = 1, timeout: float = 60.0) -> Round:
        """Block until at least `min_rounds` rounds have finished and nothing is pending or
        running; return the last round. For tests and plugins: note `round_count`, change
        files, then `wait_idle(count + 1)`."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._done or (
                    len(self._rounds) >= min_rounds and not self._busy and not self._reasons),
                    timeout):
                raise TimeoutError(f"watcher not idle after {timeout} s "
                                   f"({len(self._rounds)} rounds, wanted {min_rounds})")
            if not self._rounds:
                raise RuntimeError("the watcher stopped before its first round")
            return self._rounds[-1]

    # -- events -------------------------------------------------------------------------------
    def _note(self, paths: list[str], reason: str | None = None) -> None:
        """Called on observer threads: classify paths and wake the loop."""
        config = self.config
        if config is None:
            return
        found: set[str] = set()
        changed: set[str] = set()
        for path in paths:
            kind, rel = self._classify(config, path)
            if kind:
                found.add(reason or kind)
            if rel:
                changed.add(rel)
        if found:
            now = time.monotonic()
            with self._cond:
                first = not self._reasons
                if first:
                    self._first_event = now
                self._last_event = now
                self._reasons |= found
                self._changed |= changed
                if first:  # later events need no wake-up: the loop re-checks when quiet is due
                    self._cond.notify_all()

    def _classify(self, config: Config, path: str) -> tuple[str | None, str | None]:
        source = str(config.source)
        if path.startswith(source + os.sep):
            rel = path[len(source) + 1:].replace(os.sep, "/")
            # Hidden entries are never sources (discover skips them): editor swap files and
            # `.name.tmp` writes before a rename must not start rounds of their own.
            if any(part.startswith(".") for part in rel.split("/")):
                return None, None
            return "change", rel
        if config.templates and (path == str(config.templates)
                                 or path.startswith(str(config.templates) + os.sep)):
            return "templates", None
        if path in self._config_files(config):
            return "config", None
        return None, None

    def _config_files(self, config: Config) -> set[str]:
        if self.config_path is not None:
            return {str(self.config_path)}
        # Found by name: creating imgpipe.toml next to pyproject.toml changes which one wins.
        return {str(config.root / CONFIG_FILE), str(config.root / PYPROJECT)}

    def _sync_watches(self) -> None:
        """Watch the config's directory (not recursively), the source tree and templates."""
        config = self.config
        assert config is not None and self._observer is not None
        wanted = {(str(config.root), False), (str(config.source), True)}
        if config.templates:
            wanted.add((str(config.templates), True))
        for key in list(self._watches):
            if key not in wanted:
                self._observer.unschedule(self._watches.pop(key))
        for key in wanted - set(self._watches):
            if os.path.isdir(key[0]):  # a missing source dir is retried after every round
                self._watches[key] = self._observer.schedule(
                    _Handler(self), key[0], recursive=key[1], event_filter=_EVENTS)

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._round({"start"}, set())
            while not self._stop.is_set():
                try:
                    batch = self._next_batch()
                    if batch is not None:
                        self._round(*batch)
                except Exception:  # never die: log, breathe, watch on
                    self.log_line("error[internal]: watcher loop\n" + traceback.format_exc())
                    self._stop.wait(1.0)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _next_batch(self) -> tuple[set[str], set[str]] | None:
        """Wait for a batch of changes that is quiet and settled (or due by `max_wait`); None
        after a rescan that found nothing or when stopping."""
        next_rescan = time.monotonic() + self.rescan
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._reasons:
                    due = self._first_event + self.max_wait
                    quiet = self._last_event + self.debounce
                    wait = quiet - now
                    if wait <= 0:  # stat the touched files only once the burst is over
                        wait = self._unsettled(now)
                    if now >= due:
                        wait = 0.0
                    if wait <= 0:
                        batch = (self._reasons, self._changed)
                        self._reasons, self._changed = set(), set()
                        self._busy = True
                        return batch
                    self._cond.wait(min(wait, max(due - now, 0.001)))
                elif now >= next_rescan:
                    break
                else:
                    self._cond.wait(next_rescan - now)
        if not self._stop.is_set():
            self._rescan()
        return None

    def _unsettled(self, now: float) -> float:
        """Seconds until every touched file is `settle` seconds older than its last write."""
        config = self.config
        assert config is not None
        youngest = 0.0
        wall = time.time()
        for rel in self._changed:
            try:
                age = wall - os.stat(config.source / rel).st_mtime
            except OSError:
                continue  # deleted or renamed away: nothing to wait for
            youngest = max(youngest, self.settle - age)
        # An mtime in the future (clock skew, `touch -d`) must not hold the round back forever:
        # max_wait still bounds it, and a wait longer than `settle` means the clock is off.
        return min(youngest, self.settle)

    def _rescan(self) -> None:
        """The catch-up for lost events: compare every source's stat with the last round's."""
        config = self.config
        assert config is not None
        try:
            current = _stat_snapshot(config)
        except (ConfigError, OSError):
            current = {}
        changed = {rel for rel in current.keys() | self._snapshot.keys()
                   if current.get(rel) != self._snapshot.get(rel) and rel != _CONFIG}
        config_changed = self._config_stats(config) != self._snapshot.get(_CONFIG)
        if changed or config_changed:
            self._note([str(config.source / rel) for rel in changed] +
                       ([str(config.path)] if config_changed else []), reason="rescan")
            with self._cond:
                self._changed |= changed  # also the ones _classify would call hidden
                if config_changed:
                    self._reasons.add("config")

    # -- one round ----------------------------------------------------------------------------
    def _round(self, reasons: set[str], changed: set[str]) -> None:
        started = time.monotonic()
        self._timer.seconds = 0.0
        summary: Summary | None = None
        error: str | None = None
        reload_failed = False
        try:
            assert self.config is not None
            # Stats are taken before reading anything, so a change made during the round
            # differs from them and the next rescan catches it even if its event is lost.
            config_stats = self._config_stats(self.config)
            self._snapshot[_CONFIG] = config_stats
            if reasons & {"config", "rescan"} and "start" not in reasons:
                reload_failed = not self._reload()
            config = self.config
            if reload_failed and reasons <= {"config", "rescan"} and not changed:
                pass  # nothing else changed: the last good config already built this tree
            else:
                self._snapshot = {**_stat_snapshot(config), _CONFIG: config_stats}
                summary = build(config, gc=True, wait=False, jobs=self.jobs,
                                engine=self._timer, events=_StopEvents(self._stop))
        except _Stopped:
            error = "stopped"
        except BuildLocked as exc:
            error = "locked"
            self.log_line(f"waiting: {exc}")
            self._retry(reasons, changed)
        except ConfigError as exc:  # a missing source dir, a label clash between rules
            error = "config"
            for problem in exc.problems:
                self.log_line(f"error[{problem.code}]: {problem.message}")
        except Exception:  # the watcher must outlive any bug in one round
            error = "exception"
            self.log_line("error[internal]: the round failed; watching on\n"
                          + traceback.format_exc().rstrip())
        if reload_failed and error is None:
            error = "config"
        if self.config is not None and self._observer is not None:
            try:
                self._sync_watches()
            except OSError as exc:
                self.log_line(f"error[watch]: {exc}")
        with self._cond:
            done = Round(len(self._rounds), tuple(sorted(reasons)), tuple(sorted(changed)),
                         summary, error, time.monotonic() - started, self._timer.seconds,
                         time.monotonic())
        if summary is not None:
            self._report(done, summary)
        if self.on_round is not None:
            try:
                self.on_round(done)
            except Exception:
                self.log_line("error[callback]: on_round failed\n" + traceback.format_exc())
        with self._cond:
            self._rounds.append(done)
            self._busy = False
            self._cond.notify_all()

    def _reload(self) -> bool:
        """Re-read the config; on errors report them and keep the last good one."""
        try:
            config = load(self.config_path, self.directory)
        except ConfigError as exc:
            for problem in exc.problems:
                self.log_line(f"error[{problem.code}]: {problem.message}")
            self.log_line("config has errors: keeping the last good one")
            return False
        if config != self.config:
            for problem in config.warnings:
                self.log_line(f"warning[{problem.code}]: {problem.message}")
            self.log_line(f"config reloaded: {config.path}")
            self.config = config
        return True

    def _config_stats(self, config: Config) -> tuple:
        return tuple(_stat(Path(p)) for p in sorted(self._config_files(config)))

    def _retry(self, reasons: set[str], changed: set[str]) -> None:
        with self._cond:
            now = time.monotonic()
            if not self._reasons:
                self._first_event = now
            self._last_event = now + _LOCK_RETRY
            self._reasons |= reasons - {"start"} | {"retry"}
            self._changed |= changed

    def _report(self, done: Round, s: Summary) -> None:
        for f in s.failures:
            place = f"{f.source} [{f.label}]" if f.label else f.source
            with self._cond:
                changing = f.source in self._changed
            # A file that changed again during the round is retried by the next one.
            tail = " (it changed during the round; retrying)" if changing else ""
            self.log_line(f"error[{f.code}]: {place}: {f.stage}: {f.message}{tail}")
        what = (f"round {done.number} ({', '.join(done.reasons)}: {len(done.changed)} paths)"
                if done.number else "initial build")
        self.log_line(f"{what}: {s.sources} sources; {s.built} built, {s.cached} cached, "
                      f"{s.failed} failed; {s.files_written} written, {s.files_removed} removed; "
                      f"{human_bytes(s.bytes_after)}; {done.seconds:.2f} s")


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _stat_snapshot(config: Config) -> dict[str, Any]:
    """The stat fields the build's stat cache keys on, for every source (no bytes read)."""
    return {f.relpath: (f.size, f.mtime_ns, f.ctime_ns, f.inode) for f in discover(config)}
