"""`imgpipe watch`: keep the output right while people edit (the only watchdog importer).

A watcher runs one full incremental build, then turns filesystem events into *rounds*
(rounds.py): each round is a plain incremental build, which the stat cache keeps to a stat
walk plus the renders of what really changed. Events only decide *when* a round runs:

- debounce: a round starts once no event came for `debounce` seconds (an editor's save, a
  folder of photos dropped at once, become one round), or `max_wait` after the first event;
- settle: a touched file whose mtime is younger than `settle` is still being written, so the
  round waits for it (up to `max_wait`);
- rescan: events can be lost (inotify queue overflow, a symlinked source edited elsewhere), so
  every `rescan` seconds the stat fields of all sources are compared with those seen when the
  last round started; any difference starts a round.

The engine decodes source bytes the build read itself, never a file name, so a file replaced
under the same name cannot come back from libvips' per-file-name cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
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

from .config import Config
from .model import Engine
from .rounds import Round, Rounds

__all__ = ["Round", "Watcher"]

# Opened / closed-without-writing are left out on purpose: every round reads the sources it
# renders, and those reads would start the next round, forever. Directory "modified" events
# only repeat what the events of their entries say.
_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

LOCK_RETRY = 0.5  # seconds before retrying a round that found another build running

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.watcher._note([os.fsdecode(p) for p in paths if p])


class Watcher:
    """Build, then rebuild on changes until `stop()`. Rounds run on one thread of their own.

    `on_round(round)` is called on that thread after every round (exceptions in it are
    logged); `log_line(text)` gets the human-readable lines (default: the logging module).
    Tests and plugins note `round_count`, change files, then `wait_idle(count + 1)`.
    """

    def __init__(
        self,
        config_path: Path | str | None = None,
        *,
        directory: Path | str | None = None,
        on_round: Callable[[Round], None] | None = None,
        log_line: Callable[[str], None] | None = None,
        debounce: float = 0.2,
        max_wait: float = 3.0,
        settle: float = 0.2,
        rescan: float = 30.0,
        jobs: int | None = None,
        engine: Engine | None = None,
    ):
        # Resolved now: events carry absolute paths, and the cwd may change later.
        self.config_path = Path(config_path).resolve() if config_path else None
        self.directory = Path(directory) if directory else None
        self.on_round = on_round
        self.log_line = log_line or log.info
        self.debounce, self.max_wait, self.settle, self.rescan = debounce, max_wait, settle, rescan
        self.jobs, self.engine = jobs, engine
        self._runner: Rounds | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._watches: dict[tuple[str, bool], tuple[Any, int]] = {}  # (watch, inode)
        self._unwatchable: set[tuple[str, bool]] = set()  # reported once
        self._rounds: list[Round] = []
        self._busy = False  # a batch was taken and its round has not finished
        self._done = False
        # Pending work, guarded by _cond: why a round is wanted, and the paths events named.
        self._reasons: set[str] = set()
        self._changed: set[str] = set()
        self._first_event = self._last_event = 0.0

    # -- public API ---------------------------------------------------------------------------
    @property
    def config(self) -> Config | None:
        """The config in force: the last one that loaded without errors."""
        return self._runner.config if self._runner else None

    def start(self) -> None:
        """Load the config (ConfigError if invalid: there is no last good one yet), start
        watching, and run the initial build on the watcher's thread."""
        self._runner = Rounds(
            self.config_path,
            self.directory,
            self._stop,
            lambda line: self.log_line(line),
            self.jobs,
            self.engine,
        )
        self._observer = Observer()
        self._sync_watches()  # before the first build, so edits made during it are seen
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
        """Wait for the watcher's thread to end (it does after `stop()`); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

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
        running; return the last round."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: (
                    self._done
                    or (len(self._rounds) >= min_rounds and not self._busy and not self._reasons)
                ),
                timeout,
            ):
                raise TimeoutError(
                    f"watcher not idle after {timeout} s "
                    f"({len(self._rounds)} rounds, wanted {min_rounds})"
                )
            if not self._rounds:
                raise RuntimeError("the watcher stopped before its first round")
            return self._rounds[-1]

    # -- events (called on observer threads) --------------------------------------------------
    def _note(self, paths: list[str], reason: str | None = None) -> None:
        config = self.config
        if config is None:
            return
        reasons: set[str] = set()
        changed: set[str] = set()
        for path in paths:
            kind, rel = self._classify(config, path)
            if kind:
                reasons.add(reason or kind)
            if rel:
                changed.add(rel)
        if reasons:
            self._want(reasons, changed, time.monotonic())

    def _want(self, reasons: set[str], changed: set[str], at: float) -> None:
        with self._cond:
            first = not self._reasons
            if first:
                self._first_event = at
            self._last_event = max(self._last_event, at) if not first else at
            self._reasons |= reasons
            self._changed |= changed
            if first:  # later events need no wake-up: the loop re-checks when quiet is due
                self._cond.notify_all()

    def _classify(self, config: Config, path: str) -> tuple[str | None, str | None]:
        """(why a round is wanted, source-relative path) for an event's path."""
        source = str(config.source)
        if path.startswith(source + os.sep):
            rel = path[len(source) + 1 :].replace(os.sep, "/")
            # Hidden entries are never sources (discover skips them): editor swap files and
            # `.name.tmp` writes before a rename must not start rounds of their own.
            if any(part.startswith(".") for part in rel.split("/")):
                return None, None
            return "change", rel
        if path == source:  # the source dir itself appeared or went away
            return "change", None
        templates = str(config.templates) if config.templates else None
        if templates and (path == templates or path.startswith(templates + os.sep)):
            return "templates", None
        assert self._runner is not None
        if path in self._runner.config_files():
            return "config", None
        return None, None

    def _sync_watches(self) -> None:
        """Watch the config's directory (not recursively), the source tree and templates.

        A watch follows the directory it was made on and ends when that one is deleted: a
        directory deleted and made again (a git checkout, `rm -r` + copy) needs a new watch.
        Its emitter having stopped says so; a new inode says so before the emitter knows."""
        config = self.config
        assert config is not None and self._observer is not None
        wanted = {(str(config.root), False), (str(config.source), True)}
        if config.templates:
            wanted.add((str(config.templates), True))
        live = {e.watch for e in self._observer.emitters if e.should_keep_running()}
        for key, (watch, inode) in list(self._watches.items()):
            if key not in wanted or watch not in live or _inode(key[0]) != inode:
                del self._watches[key]
                try:
                    self._observer.unschedule(watch)
                except (KeyError, OSError):
                    pass  # already gone with its directory
        for key in wanted - set(self._watches):
            found = _inode(key[0])
            if found is None:  # missing: retried after every round and rescan
                continue
            try:
                watch = self._observer.schedule(
                    _Handler(self), key[0], recursive=key[1], event_filter=_EVENTS
                )
            except OSError as exc:  # e.g. the inotify watch limit: rescans still catch up
                if key not in self._unwatchable:
                    self._unwatchable.add(key)
                    self.log_line(
                        f"error[watch]: cannot watch {key[0]} ({exc}); changes are "
                        f"seen by the rescan every {self.rescan:g} s"
                    )
                continue
            self._watches[key] = (watch, found)

    # -- the loop (the watcher's thread) ------------------------------------------------------
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
                    with self._cond:
                        self._busy = False
                    self._stop.wait(1.0)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _next_batch(self) -> tuple[set[str], set[str]] | None:
        """Wait for changes that are quiet and settled (or due by `max_wait`) and take them;
        None when stopping or after a rescan."""
        next_rescan = time.monotonic() + self.rescan
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._reasons:
                    due = self._first_event + self.max_wait
                    wait = self._last_event + self.debounce - now
                    if wait <= 0:  # stat the touched files only once the burst is over
                        wait = self._unsettled()
                    if wait <= 0 or now >= due:
                        batch = (self._reasons, self._changed)
                        self._reasons, self._changed = set(), set()
                        self._busy = True
                        return batch
                    self._cond.wait(min(wait, due - now))
                elif now >= next_rescan:
                    break
                else:
                    self._cond.wait(next_rescan - now)
        if not self._stop.is_set():
            self._rescan()
        return None

    def _unsettled(self) -> float:
        """Seconds until every touched file is `settle` seconds older than its last write."""
        config = self.config
        assert config is not None
        wall = time.time()
        longest = 0.0
        for rel in self._changed:
            try:
                age = wall - os.stat(config.source / rel).st_mtime
            except OSError:
                continue  # deleted or renamed away: nothing to wait for
            longest = max(longest, self.settle - age)
        # An mtime in the future (clock skew, `touch -d`) must not hold rounds back for long.
        return min(longest, self.settle)

    def _rescan(self) -> None:
        assert self._runner is not None
        changed, config_changed = self._runner.changes()
        if changed or config_changed:
            self._want(
                {"rescan"} | ({"config"} if config_changed else set()), changed, time.monotonic()
            )
        self._sync_watches()

    def _round(self, reasons: set[str], changed: set[str]) -> None:
        assert self._runner is not None
        with self._cond:
            number = len(self._rounds)

        def changing(rel: str) -> bool:
            with self._cond:
                return rel in self._changed

        # Watches are brought up to date (new source dir, one made again) before the build
        # lists the sources: a file added after that listing is then always seen.
        done = self._runner.run(number, reasons, changed, changing, self._sync_watches)
        if done.error == "locked":  # another `imgpipe build` holds the cache: try again soon
            self._want(reasons - {"start"} | {"retry"}, changed, time.monotonic() + LOCK_RETRY)
        self._sync_watches()  # for rounds that did not build (a config with errors)
        if self.on_round is not None:
            try:
                self.on_round(done)
            except Exception:
                self.log_line("error[callback]: on_round failed\n" + traceback.format_exc())
        with self._cond:
            self._rounds.append(done)
            self._busy = False
            self._cond.notify_all()


def _inode(path: str) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino if os.path.isdir(path) else None
