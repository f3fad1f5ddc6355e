"""The shared, content-addressed store on object storage (`remote_cache`, any fsspec URL).

Layout under the URL's prefix (`xx` = the first two characters of the name):

- `renditions/xx/<cache key>`: one line of JSON, what the engine produced for that key (a
  `Record`, with the sha256 of the encoded bytes), then the encoded bytes themselves: one
  object, so a rendition is put and fetched in one request and never half there;
- `infos/xx/<source sha256>.json`: the header facts and placeholder of a source;
- `sources/xx/<source sha256>`: a source's bytes, for cluster workers (no shared filesystem).

Every object is written once: put only if absent (S3 `If-None-Match: *`, a hard link on a local
disk). Nothing read back is trusted until it checks out: a rendition's bytes must hash to its
record (and to this machine's own record of the key, when it has one), a source to its name. A concurrent or hostile writer
can therefore cost a re-render, never a wrong output. Keys hash every input (plan.py), so two
honest writers of a key write the same rendition.

fsspec is imported when a store is opened: `remote_cache` is an extra (`imgpipe[cluster]`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ConfigError, Problem, StoreError
from .model import Placeholder, Record, SourceInfo
from .state import State

BATCH = 256  # objects fetched concurrently per request round (s3fs runs `cat` of a list async)
REFILL_CHUNK = 1024  # renditions held in memory at once while refilling (then on disk)
CONCURRENCY = 8  # puts in flight (threads: fsspec's sync API is thread-safe)


@dataclass(frozen=True)
class StoreSpec:
    """Where the store is: plain, picklable data, so cluster workers open the same store."""

    url: str
    options: tuple[tuple[str, Any], ...] = ()  # fsspec storage options ([remote_cache_options])

    def open(self) -> Store:
        return Store(self)


class Store:
    def __init__(self, spec: StoreSpec):
        try:
            import fsspec
        except ImportError:
            raise ConfigError(
                Problem(
                    "missing-extra",
                    "remote_cache needs fsspec (and s3fs for "
                    "s3://): pip install 'imgpipe[cluster]'",
                    "remote_cache",
                )
            ) from None
        self.spec = spec
        try:
            self.fs, root = fsspec.core.url_to_fs(spec.url, **dict(spec.options))
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                Problem(
                    "bad-remote-cache",
                    f"remote_cache {spec.url!r}: {exc}; "
                    "expected an fsspec URL such as s3://bucket/prefix",
                    "remote_cache",
                )
            ) from None
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)
        # s3fs asks an object's size (a HEAD, and a LIST when absent) before each read, to
        # split big ones into ranges; ours are under limits.max_bytes: one GET is enough.
        self.read_options = (
            {"max_concurrency": 1} if {"s3", "s3a"} & set(_protocols(self.fs)) else {}
        )

    # -- raw objects ------------------------------------------------------------------------
    def _path(self, kind: str, name: str) -> str:
        return f"{self.root}/{kind}/{name[:2]}/{name}"

    def put(self, kind: str, name: str, data: bytes) -> bool:
        """Write `kind/name` unless it exists; True if this call wrote it."""
        path = self._path(kind, name)
        try:
            if self.local:
                return _put_local(path, data)
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except Exception as exc:  # s3fs/botocore/gcsfs errors share no base class
            if "PreconditionFailed" in str(exc) or "412" in str(exc):  # lost the race
                return False
            raise StoreError.failed(self.spec.url, exc) from None
        return True

    def get_many(self, kind: str, names: Iterable[str]) -> dict[str, bytes]:
        """The objects that exist among `names`, fetched concurrently, by name."""
        names = list(names)
        found: dict[str, bytes] = {}
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            if not chunk:
                continue
            # cat_ranges, not cat: cat first asks whether each path exists (s3fs: a HEAD, and
            # a LIST when absent). Any error reads as absent, as cat's on_error="omit" did.
            got = self.fs.cat_ranges(
                [self._path(kind, n) for n in chunk],
                None,
                None,
                on_error="return",
                **self.read_options,
            )
            for name, data in zip(chunk, got, strict=True):
                if isinstance(data, bytes):
                    found[name] = data
        return found

    def get(self, kind: str, name: str) -> bytes | None:
        return self.get_many(kind, [name]).get(name)

    # -- renditions -------------------------------------------------------------------------
    def put_rendition(self, record: Record, data: bytes) -> bool:
        """True if this call stored it (False: the key was taken already)."""
        return self.put("renditions", record.key, _record_json(record) + b"\n" + data)

    def put_renditions(self, items: list[tuple[Record, bytes]]) -> list[bool]:
        """`put_rendition` for each, concurrently: an object store answers in tens of ms, so
        one source's renditions would otherwise wait on each other's round trips."""
        return list(_pool().map(lambda item: self.put_rendition(*item), items))

    def renditions(
        self, keys: Iterable[str], trusted: dict[str, Record] | None = None
    ) -> dict[str, tuple[Record, bytes]]:
        """Verified renditions among `keys`: bytes count only when they hash to their record,
        or to this machine's own record of the key where it has one (`trusted`)."""
        trusted = trusted or {}
        found = {}
        for key, raw in self.get_many("renditions", keys).items():
            header, _, data = raw.partition(b"\n")
            record = trusted.get(key) or _record_from(header, key)
            if (
                record is not None
                and len(data) == record.bytes
                and hashlib.sha256(data).hexdigest() == record.sha256
            ):
                found[key] = (record, data)
        return found

    def refill(self, state: State, wanted_by_sha: dict[str, set[str]]) -> set[str]:
        """Copy what the store holds of the wanted keys into the local state (records and
        blobs, as if rendered here), and the header facts of each source whose keys were all
        found (the others are rendered anyway); returns the keys copied.

        A source's renditions are looked for only when its header facts are in the store:
        whoever renders puts them last (a worker, `_take_result`), so a source no one has
        rendered costs one request, not one per rendition. A writer killed in between costs
        a re-render."""
        infos = self.infos(wanted_by_sha)
        wanted = sorted({k for sha in infos for k in wanted_by_sha[sha]})
        trusted = {k: r for k in wanted if (r := state.record(k)) is not None}
        copied = set()
        for start in range(0, len(wanted), REFILL_CHUNK):
            for key, (record, data) in self.renditions(
                wanted[start : start + REFILL_CHUNK], trusted
            ).items():
                state.put_record(record, data)
                copied.add(key)
        for sha, info in infos.items():
            if wanted_by_sha[sha] <= copied and not state.info(sha):
                state.put_info(sha, info)
        state.commit()
        return copied

    def holds(self, record: Record) -> bool:
        """The store's rendition under `record.key` is exactly this one."""
        return record.key in self.renditions([record.key], {record.key: record})

    # -- sources and their header facts ------------------------------------------------------
    def put_info(self, sha256: str, info: SourceInfo) -> None:
        self.put("infos", f"{sha256}.json", json.dumps(asdict(info), sort_keys=True).encode())

    def infos(self, shas: Iterable[str]) -> dict[str, SourceInfo]:
        found = {}
        for name, raw in self.get_many("infos", [f"{s}.json" for s in shas]).items():
            info = _info_from(raw)
            if info is not None:
                found[name.removesuffix(".json")] = info
        return found

    def put_source(self, sha256: str, path: str) -> None:
        """A source goes up once; asking first saves uploading megabytes that are there.
        Asking is reading its first byte: one request (s3fs's `exists` makes two when the
        object is absent). Any answer but a byte reads as absent: the put is if-absent."""
        name = self._path("sources", sha256)
        (there,) = self.fs.cat_ranges([name], 0, 1, on_error="return", **self.read_options)
        if not isinstance(there, bytes) or not there:
            with open(path, "rb") as fh:
                self.put("sources", sha256, fh.read())

    def source(self, sha256: str) -> bytes | None:
        """A source's bytes, only if they are the bytes named."""
        data = self.get("sources", sha256)
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            return None
        return data


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="imgpipe-store")


def _protocols(fs: Any) -> tuple[str, ...]:
    p = fs.protocol
    return (p,) if isinstance(p, str) else tuple(p)


def _put_local(path: str, data: bytes) -> bool:
    """Put-if-absent on a local disk: a complete temp file, then a hard link, which fails if
    the name exists (atomic, unlike an exists check followed by a write)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(path):
        return False
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def _record_json(record: Record) -> bytes:
    return json.dumps(asdict(record), sort_keys=True).encode()


def _record_from(raw: bytes, key: str) -> Record | None:
    """A record as another machine wrote it; anything malformed is simply not trusted."""
    try:
        data = json.loads(raw)
        data["warnings"] = tuple(tuple(w) for w in data["warnings"])
        record = Record(**data)
    except (ValueError, TypeError, KeyError):
        return None
    if record.key != key or not isinstance(record.bytes, int) or not record.sha256:
        return None
    return record


def _info_from(raw: bytes) -> SourceInfo | None:
    try:
        data = json.loads(raw)
        if data.get("placeholder"):
            data["placeholder"] = Placeholder(**data["placeholder"])
        return SourceInfo(**data)
    except (ValueError, TypeError, AttributeError):
        return None
