"""Discover sources and plan every rendition before a single pixel is decoded.

A plan knows, per source, each rendition's label, canonical options, cache key and output
name. It may stat and hash files (the caller supplies the hashing, usually through the stat
cache) but never decodes images: `--dry-run` is this plan printed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from .config import Config, Rule
from .errors import ConfigError, Problem
from .family import RenditionSpec, SrcsetSpec
from .formats import FORMATS, by_name
from .sources import Skipped, SourceFile, discover, hash_file  # noqa: F401 - re-exported

SHORT_KEY = 8  # hex digits of the cache key in output names: enough to tell versions apart
# Every video rendition gets a poster: its first frame as a JPEG of the same size, planned as
# a rendition of its own so it is cached and hashed like any (see `poster_label`).
POSTER_SUFFIX = "-poster"
POSTER_FORMAT = "jpeg"
# An SVG that no matching rule asks to rasterise is published as it is: one rendition, this.
SVG_COPY_LABEL = "svg"
# Longest file name most file systems take (ext4, XFS, btrfs, tmpfs: 255 bytes, not characters).
NAME_MAX = 255


@dataclass(frozen=True)
class PlannedRendition:
    label: str
    options: str  # canonical option string (what the engine gets)
    key: str  # cache key: hex sha256
    format: str  # requested format; "auto" is decided by the engine from the source
    density: float
    group: str | None = None  # srcset group
    width: int | None = None  # family width in CSS px
    art: int | None = None  # the family's art direction variant (family.ArtSpec.number)
    motion: bool | None = None  # only for animated (True) or still (False) sources


@dataclass(frozen=True)
class SourcePlan:
    source: SourceFile
    sha256: str
    renditions: tuple[PlannedRendition, ...]
    srcsets: tuple[SrcsetSpec, ...]
    svg: str | None = None  # for a `.svg`: "copy" or "rasterize" (engine.open_source svg_mode)
    alt: str | None = None  # `[images."path"] alt`: the default alt text of its markup

    def output_name(self, planned: PlannedRendition, fmt: str) -> str:
        """Where `planned` is written once its format is known (after rendering, for auto):
        the one place build, dry run and manifest get a name from."""
        return output_name(self.source.relpath, planned.label, planned.key, fmt)

    def fitting(self, animated: bool) -> SourcePlan:
        """The renditions for a source that is (or is not) animated: a family's videos are
        for animations, its one-frame formats for stills (`family.motion_of`)."""
        kept = tuple(r for r in self.renditions if r.motion in (None, animated))
        return self if len(kept) == len(self.renditions) else replace(self, renditions=kept)

    def only_for(self, animated: bool) -> frozenset[str]:
        """Cache keys rendered only when the source is (or is not) animated."""
        return frozenset(self.fitting(animated).keys) - set(self.fitting(not animated).keys)

    @property
    def keys(self) -> tuple[str, ...]:
        """Distinct cache keys, in label order: two labels with the same options share one."""
        return tuple(dict.fromkeys(r.key for r in self.renditions))


@dataclass(frozen=True)
class Plan:
    sources: tuple[SourcePlan, ...]
    skipped: tuple[Skipped, ...] = ()  # sources that could not be hashed


def engine_fingerprint(engine_version: str, versions: Mapping[str, str]) -> str:
    """Everything about the engine that can change output bytes, as one stable string."""
    return json.dumps({"engine": engine_version, "versions": dict(versions)}, sort_keys=True)


def cache_key(source_sha256: str, byte_form: str, fingerprint: str) -> str:
    """Hash of what changes the bytes, and nothing else (not the label, sizes or timeout)."""
    text = "\0".join(("imgpipe-rendition-1", source_sha256, byte_form, fingerprint))
    return hashlib.sha256(text.encode()).hexdigest()


def output_name(relpath: str, label: str, key: str, fmt: str) -> str:
    """`blog/cat.jpg` + `800` + key + webp → `blog/cat-800.1a2b3c4d.webp`."""
    # Plain string work: a no-op build of 10,000 sources calls this 30,000 times, and
    # pathlib costs more than everything else in it.
    directory, slash, name = relpath.rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    tail = f"-{label}.{key[:SHORT_KEY]}.{by_name(fmt).extension}"
    return f"{directory}{slash}{fit_name(stem, tail)}{tail}"


def fit_name(stem: str, tail: str) -> str:
    """`stem`, shortened so that `stem + tail` fits in NAME_MAX bytes (a source name of 78 CJK
    characters already fills 234). A shortened stem ends in `~` and a hash of the whole stem,
    so two long names that share a beginning still get different files."""
    if len((stem + tail).encode()) <= NAME_MAX:
        return stem
    mark = "~" + hashlib.sha256(stem.encode()).hexdigest()[:SHORT_KEY]
    room = max(0, NAME_MAX - len(tail.encode()) - len(mark))
    # Cut on a character boundary: a UTF-8 sequence cut in half would not decode.
    return stem.encode()[:room].decode(errors="ignore") + mark


def build_stamp(
    config: Config,
    files: list[SourceFile],
    fingerprint: str,
    template_files: list[Path],
    skipped: list[Skipped] | None = None,
) -> str:
    """Everything a build's result depends on, as one hash: the config, the engine, the
    templates and every source's stat fields (which the stat cache trusts for its bytes).
    Equal stamps and intact outputs mean a build would reproduce exactly what is there."""
    digest = hashlib.sha256(f"stamp-1\0{config!r}\0{fingerprint}\0".encode())
    for path in template_files:
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        except FileNotFoundError:
            digest.update(f"{path}\0-\n".encode())
    for f in files:
        digest.update(f"{f.relpath}\0{f.size}\0{f.mtime_ns}\0{f.ctime_ns}\0{f.inode}\n".encode())
    for s in skipped or ():  # a link that now leads elsewhere changes what is built
        digest.update(f"{s.relpath}\0{s.code}\n".encode())
    return digest.hexdigest()


def make(
    config: Config,
    files: list[SourceFile],
    sha256_of: Callable[[SourceFile], str | Skipped],
    fingerprint: str,
) -> Plan:
    """Plan every source; raise ConfigError when two rules give one source the same label.
    A source `sha256_of` cannot hash (it says why) is left out, in `Plan.skipped`."""
    # Rules are matched per file, but their renditions are planned once per rule: keys differ
    # only by the source hash, so the per-source work is a few string hashes.
    sources = []
    skipped: list[Skipped] = []
    problems: list[Problem] = []
    # What does not depend on the source is worked out once per rule, not once per file.
    specs = {
        rule.index: [
            (spec, spec.recipe.canonical(), spec.recipe.byte_form())
            for spec in _with_posters(rule.renditions)
        ]
        for rule in config.rules
    }
    for f in files:
        rules = [r for r in config.rules if r.matches(f.relpath)]
        clash = _clash(f.relpath, rules)
        if clash:
            problems.append(clash)
            continue
        sha = sha256_of(f)
        if isinstance(sha, Skipped):
            skipped.append(sha)
            continue
        svg = _svg_mode(f.relpath, rules)
        image = config.images.get(f.relpath)
        alt = image.alt if image else None
        if svg == "copy":
            group = next((r.srcset.name for r in rules if r.srcset is not None), None)
            key = cache_key(sha, "svg-copy", fingerprint)
            copy = PlannedRendition(SVG_COPY_LABEL, "full", key, "svg", 1.0, group)
            srcsets = tuple(r.srcset for r in rules if r.srcset is not None)[:1]
            sources.append(SourcePlan(f, sha, (copy,), srcsets, svg, alt))
            continue
        focus = image.focus if image else None
        renditions = tuple(
            PlannedRendition(
                label=spec.label,
                options=canonical,
                key=cache_key(sha, byte_form, fingerprint),
                format=spec.recipe.format,
                density=float(spec.recipe.density),
                group=spec.group,
                width=spec.width,
                art=spec.art,
                motion=spec.motion,
            )
            for rule in rules
            for spec, canonical, byte_form in (
                _focused(specs[rule.index], focus) if focus else specs[rule.index]
            )
        )
        srcsets = tuple(r.srcset for r in rules if r.srcset is not None)
        sources.append(SourcePlan(f, sha, renditions, srcsets, svg, alt))
    if problems:
        raise ConfigError(problems)
    return Plan(tuple(sources), tuple(skipped))


def _focused(
    specs: list[tuple[RenditionSpec, str, str]], focus: tuple[Fraction, Fraction]
) -> list[tuple[RenditionSpec, str, str]]:
    """The specs of an image with a focal point (`[images."path"] focus`): every crop of it
    keeps that point, and its options (so its cache keys) say so."""
    out = []
    for spec, canonical, byte_form in specs:
        recipe = spec.recipe.with_focus(focus)
        if recipe is not spec.recipe:
            spec, canonical, byte_form = (
                replace(spec, recipe=recipe),
                recipe.canonical(),
                recipe.byte_form(),
            )
        out.append((spec, canonical, byte_form))
    return out


def _svg_mode(relpath: str, rules: list[Rule]) -> str | None:
    """By name: a planner reads no bytes. The engine checks that the content agrees."""
    if not relpath.lower().endswith(".svg"):
        return None
    return "rasterize" if any(rule.rasterize_svg for rule in rules) else "copy"


def poster_label(label: str, group: str | None) -> str:
    """`hero` -> `hero-poster`; in a family, the WebM and MP4 of one width share one poster:
    `800-webm` and `800-h264` -> `800-poster` (no format is called "poster")."""
    return (label.rsplit("-", 1)[0] if group is not None else label) + POSTER_SUFFIX


def _with_posters(specs: tuple[RenditionSpec, ...]) -> list[RenditionSpec]:
    """The renditions with a poster after each video (same geometry and quality, as a JPEG;
    in no srcset group: the <video> snippet names it)."""
    out = list(specs)
    labels = {spec.label for spec in specs}
    for spec in specs:
        label = poster_label(spec.label, spec.group)
        fmt = FORMATS.get(spec.recipe.format)  # None for auto
        if fmt is None or not fmt.video or label in labels:
            continue
        labels.add(label)
        out.append(
            RenditionSpec(
                label,
                replace(spec.recipe, format=POSTER_FORMAT),
                spec.where,
                width=spec.width,
                art=spec.art,
                motion=spec.motion,  # a video's poster is for what the video is for
            )
        )
    return out


def _clash(relpath: str, rules: list[Rule]) -> Problem | None:
    """Labels (and srcset group names) must be unique per source across all matching rules."""
    seen: dict[str, str] = {}
    for rule in rules:
        names = [f"label {s.label!r}" for s in rule.renditions]
        if rule.srcset:
            names.append(f"srcset group {rule.srcset.name!r}")
        for name in names:
            if name in seen and seen[name] != rule.where:
                return Problem(
                    "label-clash",
                    f"{relpath}: {name} is made by both {seen[name]} and "
                    f"{rule.where}; labels must be unique per source",
                    rule.where,
                )
            seen[name] = rule.where
    return None
