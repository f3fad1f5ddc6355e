"""The types every layer passes around, and the typed seam to the engine.

Frozen, plain data: a job, a rendition, a record and a summary can be pickled, compared and
shipped to another process (the cluster executor) as they are. Nothing here does I/O or
imports pyvips; every layer above `options`/`errors` may import this module, and the engine
is reached only through the `Engine` protocol at the bottom, so planning, state, manifest,
HTML and the edges never load libvips (DESIGN §6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NotRequired, Protocol, TypedDict

from .errors import ImageError, Problem
from .options import Recipe

if TYPE_CHECKING:
    from .plan import SourcePlan

# -- limits -----------------------------------------------------------------------------------

MAX_PIXELS = 100_000_000  # width x height x frames
MAX_BYTES = 50 * 1024 * 1024
MAX_FRAMES = 1000  # frames of an animation: each one is decoded and encoded


@dataclass(frozen=True)
class Limits:
    max_pixels: int = MAX_PIXELS
    max_bytes: int = MAX_BYTES
    max_frames: int = MAX_FRAMES


# -- what the engine reads and produces --------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """What a page shows while the image loads: a dominant colour and a tiny blurred preview,
    as a data: URI and as the ThumbHash and BlurHash strings scripts draw."""

    color: str  # "#rrggbb"
    lqip: str  # a data: URI of a few hundred bytes
    thumbhash: str  # base64, ~25-35 characters
    blurhash: str  # ~20-30 characters


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source after its header is read (size after EXIF autorotate)."""

    width: int
    height: int
    format: str  # loader family: jpeg, png, webp, gif, tiff, heif, svg
    bytes: int
    frames: int = 1
    has_alpha: bool = False
    loop: int = 0  # plays of an animation; 0 = forever (libvips' convention)
    placeholder: Placeholder | None = None  # set once the pixels were decoded


@dataclass(frozen=True)
class Rendition:
    """One encoded result and what was decided on the way."""

    data: bytes
    format: str  # a key of formats.OUTPUTS (svg for a copied SVG)
    width: int
    height: int
    quality: str | int  # the preset or fixed quality actually used
    encoder_quality: int | None  # the number handed to the encoder, if any
    warnings: tuple[Problem, ...] = ()
    score: float | None = None  # perceptual score (engine/metric.py), where one was measured

    @property
    def bytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Record:
    """One encoded rendition as the state keeps it (its bytes are in the blob store), from
    `record_of` to the manifest (`manifest.rendition_entry`). Warnings stay (code, message)
    pairs: the form the state and the shared store persist; `manifest.warnings_of` makes the
    report's `Issue`s of them."""

    key: str
    format: str
    width: int
    height: int
    bytes: int
    quality: str | int
    encoder_quality: int | None
    warnings: tuple[tuple[str, str], ...] = ()  # (code, message)
    sha256: str = ""  # of the encoded bytes: a blob is checked against it before it is used
    score: float | None = None  # perceptual score of the rendition (engine/metric.py)


# -- the engine seam --------------------------------------------------------------------------

SvgMode = Literal["copy", "rasterize"]  # what to do with an SVG source; None refuses it


class SourceHandle(Protocol):
    """An opened, validated source (engine.source.Source, engine.svg.SvgCopy, the fakes)."""

    @property
    def info(self) -> SourceInfo:
        """Header facts; after `render_all` it also carries the placeholder."""
        ...

    def render(self, recipe: Recipe) -> Rendition:
        """One rendition; raises ImageError."""
        ...

    def transparent(self) -> bool:
        """Whether some pixel is not fully opaque (reads the alpha band, when there is one);
        raises ImageError."""
        ...

    def render_all(self, recipes: list[Recipe]) -> Sequence[Rendition | ImageError]:
        """Every rendition, in order (those loading at the same size share a decode); a
        failing recipe does not stop the others. With no recipes it only decodes (the
        placeholder)."""
        ...


class Engine(Protocol):
    """What the build, the executor and watch need from an engine. The real one is the
    module `imgpipe.engine`; tests pass a fake; watch wraps one to time it. Every one of them
    is checked against the same cases (tests/test_engine_contract.py)."""

    @property
    def ENGINE_VERSION(self) -> str:  # noqa: N802 - the module constant's name
        ...

    def open_source(
        self, source: bytes | str | Path, limits: Limits, *, svg_mode: SvgMode | None = None
    ) -> SourceHandle:
        """Read and validate a source; raises ImageError."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions of everything that changes the bytes (cache keys). May load libvips."""
        ...

    def identity(self) -> dict[str, str] | None:
        """Cheap stand-in for `versions()` that loads no native library: equal identities
        mean equal versions. None when the engine cannot tell without loading (then every
        build asks `versions()`)."""
        ...


# -- a build's jobs, results and report -------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """Render `items` (cache key, canonical options) of one source; one decode feeds them all.

    With no items the job only reads the header (source info for the manifest)."""

    relpath: str
    path: str
    sha256: str
    items: tuple[tuple[str, str], ...]
    limits: Limits
    svg: SvgMode | None = None  # what to do with an SVG (None: refused)
    # Keys of `items` to render only when the source is animated, or only when it is still
    # (a family's videos, its one-frame formats): the header says which it is.
    only_animated: frozenset[str] = frozenset()
    only_still: frozenset[str] = frozenset()
    # Its plan, for leaving out what a modern format's loss at its largest width dooms
    # (imgpipe/skips.py), and the cached records of the tops that decide it.
    plan: SourcePlan | None = None
    known: tuple[Record, ...] = ()


@dataclass(frozen=True)
class JobResult:
    relpath: str
    info: SourceInfo | None
    # (cache key, outcome). A cluster worker answers with a Record: metadata only, its bytes
    # are in the shared store under the key (imgpipe/store.py).
    renditions: tuple[tuple[str, Rendition | Record | Issue], ...]
    failure: Issue | None = None  # the whole source failed (unreadable, over a limit...)
    where: str = "local"  # who rendered it: "local" or a dask worker's address


def record_of(key: str, rendition: Rendition) -> Record:
    """What the state (and the shared store) keeps of a rendition."""
    return Record(
        key,
        rendition.format,
        rendition.width,
        rendition.height,
        rendition.bytes,
        rendition.quality,
        rendition.encoder_quality,
        tuple((w.code, w.message) for w in rendition.warnings),
        hashlib.sha256(rendition.data).hexdigest(),
        rendition.score,
    )


@dataclass(frozen=True)
class Origin:
    """Where a rendition of this build came from: "local" (rendered here), a dask worker's
    address, "cache" (this machine's cache) or "remote-cache" (the shared store)."""

    source: str
    label: str
    where: str


@dataclass(frozen=True)
class Issue:
    """A failure or warning, one shape from the engine to the report: what went wrong at
    which stage, then where. The executor leaves `source` and `label` out (a job's result
    says which source and key); the build fills them in (`dataclasses.replace`)."""

    stage: str  # config, read, load, transform, encode, render, write, internal
    code: str
    message: str
    label: str | None = None  # None: the whole source (or no source at all)
    source: str = ""  # "" for the config


@dataclass(frozen=True)
class Summary:
    sources: int
    built: int
    cached: int
    failed: int
    bytes_before: int
    bytes_after: int  # of all renditions
    seconds: float
    files_written: int
    files_removed: int
    bytes_served: int = 0  # what browsers download at the widest size (manifest.served_bytes)
    failures: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    origins: tuple[Origin, ...] = ()  # one per rendition written (for --report)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class PlannedItem:
    """A line of `--dry-run`: one rendition and whether it would be built."""

    source: str
    label: str
    options: str
    key: str
    cached: bool
    output: str | None  # None when format=auto and nothing was built yet
    size: tuple[int, int] | None = None  # known from a cached header (not with trim)


class Events:
    """Progress callbacks; the CLI passes a terminal or CI reporter. Defaults do nothing."""

    def waiting(self, holder: str) -> None: ...
    def start(self, sources: int, to_render: int) -> None: ...
    def source_done(self, relpath: str, built: int, failed: int) -> None: ...


# -- the manifest entry (JSON shapes; manifest.py documents the schema) -----------------------


class RenditionEntry(TypedDict):
    url: str
    path: str
    width: int
    height: int
    format: str
    mime: str
    bytes: int
    density: float
    options: str
    quality: str | int
    encoder_quality: int | None
    score: float | None


class WarningEntry(TypedDict):
    label: str
    code: str
    message: str


class PlaceholderEntry(TypedDict):
    color: str
    lqip: str
    thumbhash: str
    blurhash: str


class SourceEntry(TypedDict):
    width: int
    height: int
    format: str
    bytes: int
    sha256: str
    alpha: bool
    warnings: list[WarningEntry]
    renditions: dict[str, RenditionEntry]
    srcsets: dict[str, dict[str, object]]  # by group name: see manifest.srcset_entry
    placeholder: PlaceholderEntry | None
    alt: NotRequired[str]  # `[images."path"] alt`, when given
