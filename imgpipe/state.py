"""What the build remembers between runs, in `cache_dir`: SQLite tables plus encoded blobs.

- `stat`: source stat fields → sha256, so a no-op build reads no image bytes. ctime and inode
  are part of the key because size and mtime can be put back after a write (`os.utime`).
- `info`: source sha256 → width, height, format..., so a no-op build needs no decode.
- `record`: cache key → what the engine produced; the bytes are a blob under `blobs/`, so a
  CI job that restores only `cache_dir` refills `output` without re-encoding.
- `written`: every file the build wrote (relative to the project root) with the fingerprint it
  was written for, its stat and the sha256 of its bytes, so unchanged files are neither read
  nor rewritten, and stale ones can be removed without touching files imgpipe did not make
  (nor one the user put back at such a path since).
- `used`: which records each scope stands by.
- `retired`: when each record stopped being used by every scope. Its blob stays, so an undo
  (a source put back, a rule reverted, while `watch` or `mkdocs serve` rebuilds) costs a
  copy, not an encode; the retired blobs of all scopes together stay under the build's
  `cache_keep` bytes, the least recently used going first.

Several projects may share one `cache_dir` (CI caches one directory for a monorepo). Records,
blobs and source info are content-addressed, so they are shared; everything that describes
one project's files (`stat`, `written`, `used`, the build stamp in `meta`) belongs to a
*scope*, the project's output directory, and a build reads and cleans only its own scope. A
record and its blob go only when no scope uses them.

A blob is written (atomically) before its record is committed, and is only used when its
bytes hash to what the record says, so a killed build leaves nothing half-trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from .files import TEMP_PREFIX, atomic_write, remove_temp_files, unlink  # noqa: F401 - re-exported
from .model import Placeholder, Record, SourceInfo

SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (scope TEXT, key TEXT, value TEXT, PRIMARY KEY (scope, key));
CREATE TABLE IF NOT EXISTS stat (scope TEXT, path TEXT, size INT, mtime_ns INT, ctime_ns INT,
                                 inode INT, sha256 TEXT, PRIMARY KEY (scope, path));
CREATE TABLE IF NOT EXISTS info (sha256 TEXT PRIMARY KEY, width INT, height INT, format TEXT,
                                 bytes INT, frames INT, has_alpha INT, loop INT,
                                 placeholder TEXT);
CREATE TABLE IF NOT EXISTS record (key TEXT PRIMARY KEY, format TEXT, width INT, height INT,
                                   bytes INT, quality TEXT, encoder_quality INT, warnings TEXT,
                                   sha256 TEXT, score REAL);
CREATE TABLE IF NOT EXISTS written (scope TEXT, path TEXT, fingerprint TEXT, size INT,
                                    mtime_ns INT, sha256 TEXT, PRIMARY KEY (scope, path));
CREATE TABLE IF NOT EXISTS used (scope TEXT, key TEXT, PRIMARY KEY (scope, key));
CREATE TABLE IF NOT EXISTS retired (key TEXT PRIMARY KEY, at INT);
"""


def scope_of(config) -> str:
    """The scope of a project's state: its output directory, relative to the cache dir (so
    a project and its cache can move together, as a CI checkout does), on real paths."""
    return os.path.relpath(os.path.realpath(config.output), os.path.realpath(config.cache_dir))


class Written(NamedTuple):
    fingerprint: str
    size: int
    mtime_ns: int


_TABLES = ("meta", "stat", "info", "record", "written", "used", "retired")
# The tables schema 5 had without a scope, and their columns.
_SCOPED_5 = {
    "meta": "key, value",
    "stat": "path, size, mtime_ns, ctime_ns, inode, sha256",
    "written": "path, fingerprint, size, mtime_ns",
}


class State:
    """The state store. Not thread-safe: only the build's main thread uses it."""

    def __init__(self, cache_dir: Path, readonly: bool = False, scope: str = ""):
        self.cache_dir = Path(cache_dir)
        self.readonly = readonly
        self.scope = scope
        self.blobs = str(self.cache_dir / "blobs")
        db = self.cache_dir / "state.sqlite"
        if readonly:
            # A dry run must not create the cache dir; a missing database is an empty state.
            # So is the state of another schema, which means nothing here (see _check_schema).
            current = False
            # A WAL database needs its -shm file to be read, and SQLite cannot create one in
            # a read-only cache dir (a CI cache mounted read-only): it is then read as an
            # immutable file, which needs no -shm (what a -wal holds is not seen, at worst
            # counting a few renditions as still to build).
            for mode in ("ro", "ro&immutable=1"):
                if current or not db.exists():
                    break
                self.db = sqlite3.connect(f"file:{db}?mode={mode}", uri=True)
                current = self._schema_is_current()
                if not current:
                    self.db.close()
            if not current:
                self.db = sqlite3.connect("file::memory:", uri=True)
                self.db.executescript(_SCHEMA)
        else:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(db)
            # WAL + NORMAL: a killed process loses at most the last transaction, never the file.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self._check_schema()
        self._stats = {
            row[0]: row[1:]
            for row in self.db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM stat WHERE scope=?",
                (scope,),
            )
        }
        self._written = {
            row[0]: Written(*row[1:])
            for row in self.db.execute(
                "SELECT path, fingerprint, size, mtime_ns FROM written WHERE scope=?", (scope,)
            )
        }

    # Loaded whole, on first use: a build that plans looks each up once, and one query beats
    # tens of thousands of small ones; a no-op build (the stamp matches) never needs them.
    @functools.cached_property
    def _records(self) -> dict[str, Record]:
        return {row[0]: _record(row) for row in self.db.execute("SELECT * FROM record")}

    @functools.cached_property
    def _infos(self) -> dict[str, SourceInfo]:
        infos = {}
        for row in self.db.execute("SELECT * FROM info"):
            try:
                placeholder = _placeholder(row[8])
            except TypeError:  # from before the placeholder had all it has: decode again
                continue
            infos[row[0]] = SourceInfo(
                row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], placeholder
            )
        return infos

    @functools.cached_property
    def _used(self) -> set[str]:
        """Keys of the records this scope stands by."""
        return {
            row[0] for row in self.db.execute("SELECT key FROM used WHERE scope=?", (self.scope,))
        }

    def _schema_is_current(self) -> bool:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:  # no meta table at all, or the file cannot be read
            return False
        return row is not None and row[0] == str(SCHEMA_VERSION)

    def _check_schema(self) -> None:
        """State from another schema is a cache like any other: dropped, not migrated; except
        the one before scopes, whose encoded results are worth keeping."""
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] == "5":
            self._migrate_from_5()
            row = None
        if row is not None and row[0] != str(SCHEMA_VERSION):
            for table in _TABLES:
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
            self.db.executescript(_SCHEMA)
            shutil.rmtree(self.blobs, ignore_errors=True)
        if row is None or row[0] != str(SCHEMA_VERSION):
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('', 'schema', ?)", (str(SCHEMA_VERSION),)
            )
            self.db.commit()

    def _migrate_from_5(self) -> None:
        """Schema 5 kept one project per cache dir: its rows become the scope of the first
        build that opens it, and records, blobs and source infos stay as they are, so an
        upgrade re-encodes nothing."""
        for table in _SCOPED_5:
            self.db.execute(f"ALTER TABLE {table} RENAME TO old_{table}")
        self.db.executescript(_SCHEMA)
        for table, columns in _SCOPED_5.items():
            self.db.execute(
                f"INSERT INTO {table} (scope, {columns}) SELECT ?, {columns} FROM old_{table}",
                (self.scope,),
            )
            self.db.execute(f"DROP TABLE old_{table}")
        self.db.execute("DELETE FROM meta WHERE key='schema'")
        self.db.execute("INSERT INTO used SELECT ?, key FROM record", (self.scope,))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def commit(self) -> None:
        if not self.readonly:
            self.db.commit()

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value of this scope (the build stamp, the last summary...)."""
        row = self.db.execute(
            "SELECT value FROM meta WHERE scope=? AND key=?", (self.scope, key)
        ).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (self.scope, key, value))
        self.db.commit()

    # -- stat cache ---------------------------------------------------------------------------
    def known_sha256(
        self, path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int
    ) -> str | None:
        row = self._stats.get(path)
        if row and row[:4] == (size, mtime_ns, ctime_ns, inode):
            return row[4]
        return None

    def remember_sha256(
        self, path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int, sha256: str
    ) -> None:
        row = (size, mtime_ns, ctime_ns, inode, sha256)
        if self._stats.get(path) != row and not self.readonly:
            self._stats[path] = row
            self.db.execute(
                "INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)", (self.scope, path, *row)
            )

    def forget_stats(self, keep: set[str]) -> None:
        gone = [p for p in self._stats if p not in keep]
        for path in gone:
            del self._stats[path]
        self.db.executemany(
            "DELETE FROM stat WHERE scope=? AND path=?", [(self.scope, p) for p in gone]
        )

    # -- source info --------------------------------------------------------------------------
    def info(self, sha256: str) -> SourceInfo | None:
        return self._infos.get(sha256)

    def put_info(self, sha256: str, info: SourceInfo) -> None:
        if self._infos.get(sha256) == info:
            return
        self._infos[sha256] = info
        placeholder = info.placeholder and json.dumps(
            [
                info.placeholder.color,
                info.placeholder.lqip,
                info.placeholder.thumbhash,
                info.placeholder.blurhash,
            ]
        )
        self.db.execute(
            "INSERT OR REPLACE INTO info VALUES (?,?,?,?,?,?,?,?,?)",
            (
                sha256,
                info.width,
                info.height,
                info.format,
                info.bytes,
                info.frames,
                int(info.has_alpha),
                info.loop,
                placeholder,
            ),
        )

    # -- records and blobs --------------------------------------------------------------------
    def blob_path(self, key: str) -> str:
        return f"{self.blobs}/{key[:2]}/{key}"

    def record(self, key: str) -> Record | None:
        """What was produced for `key`; its blob may be gone (see `has_blob`)."""
        return self._records.get(key)

    def has_blob(self, record: Record) -> bool:
        """The blob is there and holds exactly the recorded bytes."""
        data = self.read_blob(record.key)
        return data is not None and hashlib.sha256(data).hexdigest() == record.sha256

    def put_record(self, record: Record, data: bytes) -> None:
        """Blob first (atomically), then the record: a record never points at a partial blob.
        Blobs skip the fsync (half the cost of a first build of small images): one that a
        power cut truncated fails its hash check in `has_blob` and is simply re-rendered."""
        atomic_write(Path(self.blob_path(record.key)), data, durable=False)
        self._records[record.key] = record
        self.use(record.key)
        self.db.execute(
            "INSERT OR REPLACE INTO record VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                record.key,
                record.format,
                record.width,
                record.height,
                record.bytes,
                str(record.quality),
                record.encoder_quality,
                json.dumps(list(record.warnings)),
                record.sha256,
                record.score,
            ),
        )

    def read_blob(self, key: str) -> bytes | None:
        try:
            with open(self.blob_path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def use(self, key: str) -> None:
        """This scope stands by the record of `key`: another scope's GC must keep it."""
        if key not in self._used and not self.readonly:
            self._used.add(key)
            self.db.execute("INSERT OR IGNORE INTO used VALUES (?, ?)", (self.scope, key))

    def drop_records(self, keep: set[str], budget: int) -> int:
        """This scope no longer uses records outside `keep`. Those no scope uses are retired,
        not removed: they stay while all retired blobs together fit in `budget` bytes, the
        most recently used first; the rest go. Returns how many records were removed."""
        unused = [k for k in self._used if k not in keep]
        self._used.difference_update(unused)
        self.db.executemany(
            "DELETE FROM used WHERE scope=? AND key=?", [(self.scope, k) for k in unused]
        )
        now = time.time_ns()
        self.db.executemany(
            "INSERT OR REPLACE INTO retired VALUES (?, ?)", [(k, now) for k in unused]
        )
        in_use = {row[0] for row in self.db.execute("SELECT key FROM used")}
        # A record retired before this table existed counts as the oldest.
        retired = dict(self.db.execute("SELECT key, at FROM retired").fetchall())
        idle = sorted(
            (k for k in self._records if k not in keep and k not in in_use),
            key=lambda k: retired.get(k, 0),
            reverse=True,
        )
        kept = 0
        gone = []
        for key in idle:
            kept += self._records[key].bytes
            if kept > budget:
                gone.append(key)
        for key in gone:
            unlink(Path(self.blob_path(key)))
            del self._records[key]
        self.db.executemany("DELETE FROM record WHERE key=?", [(k,) for k in gone])
        self.db.execute("DELETE FROM retired WHERE key NOT IN (SELECT key FROM record)")
        return len(gone)

    # -- written files ------------------------------------------------------------------------
    def written(self, relpath: str) -> Written | None:
        return self._written.get(relpath)

    def written_paths(self) -> Iterable[str]:
        return list(self._written)

    def put_written(
        self, relpath: str, fingerprint: str, size: int, mtime_ns: int, sha256: str = ""
    ) -> None:
        entry = Written(fingerprint, size, mtime_ns)
        if self._written.get(relpath) != entry:
            self._written[relpath] = entry
            self.db.execute(
                "INSERT OR REPLACE INTO written VALUES (?,?,?,?,?,?)",
                (self.scope, relpath, fingerprint, size, mtime_ns, sha256),
            )

    def written_sha256(self, relpath: str) -> str:
        """The sha256 of what was written at `relpath` ("" if unknown). Read on demand: only
        stale files need it, and a no-op build should not load 40,000 of them."""
        row = self.db.execute(
            "SELECT sha256 FROM written WHERE scope=? AND path=?", (self.scope, relpath)
        ).fetchone()
        return (row and row[0]) or ""

    def all_written_intact(self, root: str) -> bool:
        """Every file this tool wrote is still there exactly as it left it (size and mtime)."""
        for rel, entry in self._written.items():
            try:
                st = os.stat(os.path.join(root, rel))
            except FileNotFoundError:
                return False
            if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
                return False
        return True

    def forget_written(self, relpath: str) -> None:
        self._written.pop(relpath, None)
        self.db.execute("DELETE FROM written WHERE scope=? AND path=?", (self.scope, relpath))


def _record(row: tuple) -> Record:
    quality = int(row[5]) if row[5].isdigit() else row[5]  # a preset name or a number
    warnings = () if row[7] == "[]" else tuple(tuple(w) for w in json.loads(row[7]))
    return Record(row[0], row[1], row[2], row[3], row[4], quality, row[6], warnings, row[8], row[9])


def _placeholder(text: str | None) -> Placeholder | None:
    return Placeholder(*json.loads(text)) if text else None
