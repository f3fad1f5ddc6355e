"""One round of `imgpipe watch`: reload the config if asked, run the incremental build, report.

watch.py decides *when* a round runs; this module decides *what* it does, and knows nothing of
watchdog. A round is a plain `build()`: the stat cache makes it skip every unchanged source,
remove the outputs of deleted ones and rewrite the manifest and snippets only when their bytes
change, so every round ends equal to a clean build of the tree it saw.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .build import build, default_engine
from .config import Config, load
from .errors import ConfigError, ImageError, Problem, StorageError, size_text
from .layout import CONFIG_FILE, PYPROJECT
from .lock import BuildLocked
from .model import (
    Engine,
    Events,
    Limits,
    Rendition,
    SourceHandle,
    SourceInfo,
    Summary,
    SvgMode,
)
from .options import Recipe
from .report import issue_line
from .sources import discover

CONFIG_KEY = "\0config"  # the snapshot's entry for the config file(s): never a source path

Stat = tuple[int, int, int, int] | None
T = TypeVar("T")


@dataclass(frozen=True)
class Round:
    """One round the watcher ran, as handed to `on_round`."""

    number: int  # 0 is the initial build
    reasons: tuple[str, ...]  # start, change, config, templates, rescan, retry
    changed: tuple[str, ...]  # source-relative paths that events named (sorted; may be empty)
    summary: Summary | None  # None when no build ran or it did not finish
    error: str | None  # config (kept the last good one), locked, stopped, exception
    seconds: float  # wall time of the round
    engine_seconds: float  # inside the engine (decode, resize, encode), summed over threads
    finished: float  # time.monotonic() when the round's files were all written


class Stopped(Exception):
    """Raised from the build's progress hooks to abort a round between two sources."""


class _StopEvents(Events):
    # The build commits per source and writes atomically, so stopping between two sources
    # leaves what a killed build leaves: whole files, the previous manifest, the lock released.
    def __init__(self, stop: threading.Event):
        self.stop = stop

    def start(self, sources: int, to_render: int) -> None:
        if self.stop.is_set():
            raise Stopped

    def source_done(self, relpath: str, built: int, failed: int) -> None:
        if self.stop.is_set():
            raise Stopped


class TimedEngine:
    """An engine that adds up the seconds spent inside it, so a round can tell its own
    overhead (events, planning, writing) from the encoding it had to do anyway.

    Each method of `Engine` is spelled out (no `__getattr__`, no `*args`): a wrapper that
    passed arguments on loosely once dropped `svg_mode`, and every SVG failed under watch."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.seconds = 0.0
        self._lock = threading.Lock()

    @property
    def ENGINE_VERSION(self) -> str:  # noqa: N802 - the protocol's name
        return self.engine.ENGINE_VERSION

    def versions(self) -> dict[str, str]:
        # Not cached: it must always agree with what a separate `imgpipe build` computes.
        return self.engine.versions()

    def identity(self) -> dict[str, str] | None:
        return self.engine.identity()

    def timed(self, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started

    def open_source(
        self, source: bytes | str | Path, limits: Limits, *, svg_mode: SvgMode | None = None
    ) -> SourceHandle:
        opened = self.timed(lambda: self.engine.open_source(source, limits, svg_mode=svg_mode))
        return _TimedSource(self, opened)


class _TimedSource:
    def __init__(self, timer: TimedEngine, source: SourceHandle):
        self._timer, self._source = timer, source

    @property
    def info(self) -> SourceInfo:
        return self._source.info

    def render(self, recipe: Recipe) -> Rendition:
        return self._timer.timed(lambda: self._source.render(recipe))

    def transparent(self) -> bool:
        return self._timer.timed(self._source.transparent)

    def render_all(self, recipes: list[Recipe]) -> Sequence[Rendition | ImageError]:
        return self._timer.timed(lambda: self._source.render_all(recipes))


class Rounds:
    """The config the watcher stands by (the last good one) and the rounds it runs with it.
    Used from the watcher's one loop thread only."""

    def __init__(
        self,
        config_path: Path | None,
        directory: Path | None,
        stop: threading.Event,
        log_line: Callable[[str], None],
        jobs: int | None = None,
        engine: Engine | None = None,
    ):
        self.config_path, self.directory = config_path, directory
        self.stop, self.log_line, self.jobs = stop, log_line, jobs
        self.timer = TimedEngine(engine or default_engine())
        self.config: Config = self._load()  # ConfigError here: there is no last good one
        self._print_warnings(self.config)
        # Stat fields of every source (and the config) when the last round started reading.
        self.snapshot: dict[str, Stat | tuple[Stat, ...]] = {}
        self._locked = False  # the last round found another build running

    def _load(self) -> Config:
        return load(self.config_path, self.directory)

    def config_files(self) -> set[str]:
        if self.config_path is not None:
            return {str(self.config_path)}
        # Found by name: creating imgpipe.toml next to pyproject.toml changes which one wins.
        return {str(self.config.root / CONFIG_FILE), str(self.config.root / PYPROJECT)}

    def config_stats(self) -> tuple[Stat, ...]:
        return tuple(_stat(Path(p)) for p in sorted(self.config_files()))

    def changes(self) -> tuple[set[str], bool]:
        """Sources and config whose stat differs from the last round's snapshot: the
        catch-up for lost events. Reads no bytes."""
        try:
            current: dict[str, Stat] = stat_snapshot(self.config)
        except (ConfigError, OSError):
            current = {}
        old = {k: v for k, v in self.snapshot.items() if k != CONFIG_KEY}
        changed = {rel for rel in current.keys() | old.keys() if current.get(rel) != old.get(rel)}
        return changed, self.config_stats() != self.snapshot.get(CONFIG_KEY)

    def run(
        self,
        number: int,
        reasons: set[str],
        changed: set[str],
        changing: Callable[[str], bool],
        before_build: Callable[[], None],
    ) -> Round:
        """Run one round; never raises. `changing(relpath)` tells whether a source has changed
        again since the round began (its failure is then expected, and retried);
        `before_build()` runs once the config is settled, before any source is listed."""
        started = time.monotonic()
        self.timer.seconds = 0.0
        summary: Summary | None = None
        error: str | None = None
        try:
            # Stats are taken before anything is read, so a change made during the round
            # differs from them and the next rescan catches it even if its event is lost.
            config_stats = self.config_stats()
            self.snapshot[CONFIG_KEY] = config_stats
            if reasons & {"config", "rescan"} and not self._reload():
                error = "config"
            if error and reasons <= {"config", "rescan"} and not changed:
                pass  # nothing else changed: the last good config already built this tree
            else:
                before_build()
                try:
                    sources = stat_snapshot(self.config)
                except (ConfigError, OSError):
                    sources = {}  # no source dir: the build says so, once, not every rescan
                self.snapshot = {**sources, CONFIG_KEY: config_stats}
                summary = build(
                    self.config,
                    gc=True,
                    wait=False,
                    jobs=self.jobs,
                    engine=self.timer,
                    events=_StopEvents(self.stop),
                )
        except Stopped:
            error = "stopped"
            self.log_line("stopped mid-round: outputs are whole; the next build completes them")
        except BuildLocked as exc:
            error = "locked"
            if not self._locked:  # once, not at every retry
                self.log_line(f"waiting: {exc}")
        except ConfigError as exc:  # a missing source dir, a label clash between rules
            error = "config"
            self._print_problems(exc.problems, "error")
        except StorageError as exc:  # disk full or read-only: one line, then watching on
            error = "storage"
            self._print_problems(exc.problems, "error")
        except Exception:  # the watcher must outlive any bug in one round
            error = "exception"
            self.log_line(
                "error[internal]: the round failed; watching on\n" + traceback.format_exc().rstrip()
            )
        self._locked = error == "locked"
        done = Round(
            number,
            tuple(sorted(reasons)),
            tuple(sorted(changed)),
            summary,
            error,
            time.monotonic() - started,
            self.timer.seconds,
            time.monotonic(),
        )
        if summary is not None:
            self._report(done, summary, changing)
        return done

    def _reload(self) -> bool:
        """Re-read the config; on errors report them and keep the last good one."""
        try:
            config = self._load()
        except ConfigError as exc:
            self._print_problems(exc.problems, "error")
            self.log_line("the config has errors: keeping the last good one")
            return False
        if config != self.config:
            self._print_warnings(config)
            self.log_line(f"config reloaded: {config.path}")
            self.config = config
        return True

    def _print_warnings(self, config: Config) -> None:
        self._print_problems(config.warnings, "warning")

    def _print_problems(self, problems: Iterable[Problem], kind: str) -> None:
        for problem in problems:
            self.log_line(f"{kind}[{problem.code}]: {problem.message}")

    def _report(self, done: Round, s: Summary, changing: Callable[[str], bool]) -> None:
        for f in s.failures:
            tail = " (it changed during the round; retrying)" if changing(f.source) else ""
            self.log_line(issue_line(f) + tail)
        paths = len(done.changed)
        what = (
            f"round {done.number} ({', '.join(done.reasons)}; "
            f"{paths} path{'' if paths == 1 else 's'})"
            if done.number
            else "initial build"
        )
        self.log_line(
            f"{what}: {s.sources} sources; {s.built} built, {s.cached} cached, "
            f"{s.failed} failed; {s.files_written} written, {s.files_removed} removed; "
            f"{size_text(s.bytes_after)}; {done.seconds:.2f} s"
        )


def _stat(path: Path) -> Stat:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def stat_snapshot(config: Config) -> dict[str, Stat]:
    """The stat fields the build's stat cache keys on, for every source (no bytes read)."""
    return {f.relpath: (f.size, f.mtime_ns, f.ctime_ns, f.inode) for f in discover(config)}
