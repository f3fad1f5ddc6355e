"""The manifest: every source and rendition, as stable JSON for templates and tools.

Schema (`"version": 1`), all keys sorted, no timestamps, so two clean builds of the same
inputs give byte-identical files:

    {"base_url": "/img/", "version": 1, "sources": {"blog/cat.jpg": {
        "width", "height", "format", "bytes", "sha256", "alpha" (the file has an alpha channel),
        "warnings": [{"label", "code", "message"}],
        "renditions": {"800-webp": {"url", "path", "width", "height", "format", "mime",
                                    "bytes", "density", "options", "quality",
                                    "encoder_quality", "score"}},
        "srcsets": {"default": {"name", "sizes", "fallback", "order", "src", "width", "height",
                                "formats": {"webp": [{"url", "width"}], "jpeg": [...]},
                                "dropped": [{"format", "width", "url", "bytes", "reason"}],
                                "video": null or {"sources": [{"format", "type", "url"}],
                                                  "width", "height", "poster", "loop"},
                                "art": [{"media", "sizes", "order", "src", "width", ...}]}}},
        "placeholder": null or {"color": "#rrggbb", "lqip": "data:image/webp;base64,...",
                        "thumbhash": "base64...", "blurhash": "..."},
        "alt": "..."}}}

`art` (only in a group whose rule has `[[rules.art]]`) lists its art direction variants in
config order, each shaped like a group (formats, order, fallback, src, width, height of its
largest fallback) plus its `media`. `alt` is there when `[images."path"] alt` gives one.

A modern format that saves less than MIN_SAVING against the fallback of the same width, or is
larger than the format below it, is left out of its group (`dropped` says why); its file is
still written and listed under `renditions`. Where its largest width lost, its other widths
are not even encoded (imgpipe/skips.py): they are in `dropped` with url and bytes null.

A group of an animated source offers only formats that keep the motion (a still AVIF would
win the <picture>); its video formats, when asked for, make the `video` entry, which the
snippet renders as <video> (html.py).

One source per line: diffs between builds stay readable and writing stays fast for 10,000
sources (json's C encoder is only used without `indent`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .config import SrcsetSpec
from .formats import AUTO, MODERN_ORDER, VIDEO_ORDER, by_name
from .model import Issue, Record, RenditionEntry, SourceEntry, SourceInfo
from .plan import PlannedRendition, SourcePlan, poster_label

VERSION = 1


def rendition_entry(
    plan: SourcePlan, planned: PlannedRendition, record: Record, base_url: str
) -> RenditionEntry:
    path = plan.output_name(planned, record.format)
    return {
        "url": base_url + url_path(path),
        "path": path,
        "width": record.width,
        "height": record.height,
        "format": record.format,
        "mime": by_name(record.format).mime,
        "bytes": record.bytes,
        "density": planned.density,
        "options": planned.options,
        # What was decided: the preset (or fixed number), the encoder's number, and the
        # perceptual score reached (None where none was measured: fixed numbers, GIF, PNG).
        "quality": record.quality,
        "encoder_quality": record.encoder_quality,
        "score": record.score,
    }


def url_path(path: str) -> str:
    """A file path as the path part of a URL, percent-encoded once, here, where every URL is
    made. Only unreserved characters and `/` stay as they are: `,` would split a srcset
    candidate, `#` and `?` would end the path, `%` and spaces would be misread."""
    return quote(path, safe="/")


def source_entry(
    plan: SourcePlan,
    info: SourceInfo,
    records: Mapping[str, Record],
    base_url: str,
    skipped: Mapping[str, str] | None = None,
) -> SourceEntry:
    """A source's manifest entry from its plan, header info and the records of the renditions
    that exist (`records` by cache key; failed renditions are simply absent). `skipped`: the
    keys left unencoded because their format lost at its largest width (skips.doomed), and why."""
    renditions: dict[str, dict[str, Any]] = {}
    for planned in plan.renditions:
        record = records.get(planned.key)
        if record is not None:
            renditions[planned.label] = rendition_entry(plan, planned, record, base_url)
    srcsets = {}
    skipped = skipped or {}
    unencoded = {p.label: skipped[p.key] for p in plan.renditions if p.key in skipped}
    for spec in plan.srcsets:
        members = [p for p in plan.renditions if p.group == spec.name]
        group = srcset_entry(
            spec,
            [p for p in members if p.art is None],
            renditions,
            animated=info.frames > 1,
            loop=info.loop != 1,
            skipped=unencoded,
        )
        if group:
            art = [
                {**entry, "media": variant.media}
                for variant in spec.art
                if (
                    entry := srcset_entry(
                        replace(spec, sizes=variant.sizes, widths=variant.widths, art=()),
                        [p for p in members if p.art == variant.number],
                        renditions,
                        animated=info.frames > 1,
                        skipped=unencoded,
                    )
                )
            ]
            if art:  # listed only where there is some, so other groups read as before
                group["art"] = art
            srcsets[spec.name] = group
    placeholder = info.placeholder and {
        "color": info.placeholder.color,
        "lqip": info.placeholder.lqip,
        "thumbhash": info.placeholder.thumbhash,
        "blurhash": info.placeholder.blurhash,
    }
    entry: SourceEntry = {
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "bytes": info.bytes,
        "sha256": plan.sha256,
        "alpha": info.has_alpha,
        "warnings": [
            {"label": w.label, "code": w.code, "message": w.message}
            for w in warnings_of(plan, records)
        ],
        "renditions": renditions,
        "srcsets": srcsets,
        "placeholder": placeholder,
    }
    if plan.alt is not None:
        entry["alt"] = plan.alt
    return entry


def collapsed(plan: SourcePlan, records: Mapping[str, Record]) -> dict[str, str]:
    """Family widths a small source cannot reach come out alike (scale-down never enlarges):
    a 371 px source asked for 480, 960 and 1600 gives three 371 px files. They collapse into
    one candidate, as in eleventy-img: label -> the label kept in its place, the smallest
    width asked for. The others are neither written nor listed, so no two names hold the
    same bytes; each name still holds the bytes of its own options (its cache key)."""
    kept: dict[tuple[str, str, int, int, float], str] = {}
    gone: dict[str, str] = {}
    for planned in sorted(plan.renditions, key=lambda p: p.width or 0):
        record = records.get(planned.key)
        if planned.group is None or record is None:
            continue
        alike = (planned.group, record.format, record.width, record.height, planned.density)
        if alike in kept:
            gone[planned.label] = kept[alike]
        else:
            kept[alike] = planned.label
    return gone


def served_bytes(entry: Mapping[str, Any]) -> int:
    """What a browser downloads to show a source at its widest: in each srcset group, the
    widest candidate of the first format offered (browsers take the first they support; all
    current ones take AVIF or WebP), or the first video source; the largest of the groups.
    Without a group, its widest rendition (the smallest file of that width)."""
    by_url = {r["url"]: r["bytes"] for r in entry["renditions"].values()}
    groups = []
    for group in entry["srcsets"].values():
        if group.get("video"):
            groups.append(by_url.get(group["video"]["sources"][0]["url"], 0))
        else:  # each format's candidates are sorted by width
            groups.append(by_url.get(group["formats"][group["order"][0]][-1]["url"], 0))
    if groups:
        return max(groups)
    renditions = list(entry["renditions"].values())
    widest = max((r["width"] for r in renditions), default=0)
    return min((r["bytes"] for r in renditions if r["width"] == widest), default=0)


def warnings_of(plan: SourcePlan, records: Mapping[str, Record]) -> list[Issue]:
    """The warnings of a source's renditions (those in `records`), as the report's `Issue`s,
    in the manifest's order: by label, code, message."""
    # A poster is a first frame on purpose: its "only the first frame" warning is noise.
    posters = {poster_label(p.label, p.group) for p in plan.renditions if _video(p.format)}
    warnings = [
        Issue("render", code, message, planned.label, plan.source.relpath)
        for planned in plan.renditions
        if planned.key in records
        for code, message in records[planned.key].warnings
        if not (code == "animation-dropped" and planned.label in posters)
    ]
    return sorted(warnings, key=lambda w: (w.label or "", w.code, w.message))


def srcset_entry(
    spec: SrcsetSpec,
    planned: list[PlannedRendition],
    renditions: Mapping[str, dict[str, Any]],
    animated: bool = False,
    loop: bool = True,
    skipped: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Group a family's renditions by their actual format. Widths a small source could not
    reach come out equal; a srcset lists each width once (the first, smallest request).
    `skipped`: labels left unencoded (skips.doomed) and why; they join `dropped`."""
    by_format: dict[str, dict[int, str]] = {}
    largest: dict[str, dict[str, Any]] = {}
    # format -> (largest rendition, its poster or None)
    videos: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    posters: list[dict[str, Any]] = []
    sized: dict[tuple[str, int], dict[str, Any]] = {}  # (format, width) -> the listed entry
    for p in sorted(planned, key=lambda p: p.width or 0):
        entry = renditions.get(p.label)
        if entry is None:
            continue
        fmt = entry["format"]
        if _video(fmt):
            poster = renditions.get(poster_label(p.label, p.group))
            if fmt not in videos or entry["width"] > videos[fmt][0]["width"]:
                videos[fmt] = (entry, poster)
            if poster is not None and poster not in posters:
                posters.append(poster)
            continue
        if entry["width"] not in by_format.setdefault(fmt, {}):
            by_format[fmt][entry["width"]] = entry["url"]
            sized[fmt, entry["width"]] = entry
        if fmt not in largest or entry["width"] > largest[fmt]["width"]:
            largest[fmt] = entry
    if animated and any(by_name(f).animated for f in by_format):
        by_format = {f: urls for f, urls in by_format.items() if by_name(f).animated}
    if not by_format and posters:  # a video-only family: its posters are the <img> fallback
        for entry in posters:
            by_format.setdefault(entry["format"], {}).setdefault(entry["width"], entry["url"])
            if entry["format"] not in largest or entry["width"] > largest[entry["format"]]["width"]:
                largest[entry["format"]] = entry
    if not by_format:
        return None
    # Modern formats go into <source> elements; the first other one is what <img> shows.
    order = sorted(
        by_format,
        key=lambda f: (
            MODERN_ORDER.index(f) if f in MODERN_ORDER else len(MODERN_ORDER),
            _position(spec, f),
        ),
    )
    fallback = next((f for f in order if f not in MODERN_ORDER), order[-1])
    dropped = _not_smaller(by_format, sized, order, fallback) + [
        {"format": p.format, "width": p.width, "url": None, "bytes": None, "reason": why}
        for p in planned
        if (why := (skipped or {}).get(p.label)) is not None
    ]
    dropped.sort(key=lambda d: (MODERN_ORDER[::-1].index(d["format"]), d["width"]))
    order = [f for f in order if by_format[f]]
    img = largest[fallback]
    return {
        "name": spec.name,
        "sizes": spec.sizes,
        "fallback": fallback,
        # JSON objects are sorted, so the <source> order is kept explicitly.
        "order": [f for f in order if f != fallback] + [fallback],
        "src": img["url"],
        "width": img["width"],
        "height": img["height"],
        "formats": {
            f: [{"url": url, "width": w} for w, url in sorted(by_format[f].items())] for f in order
        },
        "dropped": dropped,
        "video": _video_entry(videos, loop),
    }


# A modern format earns its <source> only by saving at least this much against the fallback
# of the same width: less is not worth a second download path (or a browser's decode of a
# costlier format).
MIN_SAVING = 0.05


def _not_smaller(
    by_format: dict[str, dict[int, str]],
    sized: Mapping[tuple[str, int], Any],
    order: list[str],
    fallback: str,
) -> list[dict[str, Any]]:
    """Take modern renditions that do not pay their way out of `by_format`; say why.

    Checked from the fallback up (webp, then avif), each against the fallback and the
    nearest format below it that kept that width. A format whose largest width goes is
    dropped whole: its srcset would otherwise offer large screens a smaller image.
    """
    dropped: list[dict[str, Any]] = []
    kept_below = [fallback]
    for fmt in reversed([f for f in order if f != fallback and f in MODERN_ORDER]):
        reasons: dict[int, str] = {}
        for width in sorted(by_format[fmt]):
            size = sized[fmt, width].get("bytes")
            base = sized.get((fallback, width))
            below = next((f for f in kept_below[1:][::-1] if width in by_format[f]), None)
            if size is None:  # sizes unknown: nothing to judge by
                continue
            if base is not None and size > (1 - MIN_SAVING) * base["bytes"]:
                saving = 1 - size / base["bytes"]
                than = f"the {fallback} of this width ({base['bytes']} bytes)"
                reasons[width] = (
                    f"{size} bytes, {saving:.0%} smaller than {than}: less than {MIN_SAVING:.0%}"
                    if saving >= 0
                    else f"{size} bytes, larger than {than}"
                )
            elif below is not None and size > sized[below, width]["bytes"]:
                reasons[width] = (
                    f"{size} bytes, larger than the {below} of this width "
                    f"({sized[below, width]['bytes']} bytes)"
                )
        if reasons and max(by_format[fmt]) in reasons:
            top = max(by_format[fmt])
            for width in by_format[fmt]:
                reasons.setdefault(
                    width,
                    f"the largest {fmt} ({top} px) was dropped; without "
                    f"it large screens would get a smaller image",
                )
        for width in sorted(reasons):
            entry = sized[fmt, width]
            dropped.append(
                {
                    "format": fmt,
                    "width": width,
                    "url": entry["url"],
                    "bytes": entry["bytes"],
                    "reason": reasons[width],
                }
            )
            del by_format[fmt][width]
        if by_format[fmt]:
            kept_below.append(fmt)
    return dropped


def _video(fmt: str) -> bool:
    return fmt != AUTO and by_name(fmt).video


def _video_entry(
    videos: Mapping[str, tuple[dict[str, Any], dict[str, Any] | None]], loop: bool
) -> dict[str, Any] | None:
    """The largest rendition of each video format (a <video> has no srcset), in VIDEO_ORDER,
    with the poster of the first."""
    if not videos:
        return None
    ordered = sorted(videos, key=VIDEO_ORDER.index)
    first, poster = videos[ordered[0]]
    return {
        # The codec in the type lets a browser that has WebM without VP9 skip to the MP4.
        "sources": [
            {
                "format": f,
                "url": videos[f][0]["url"],
                "type": "video/webm; codecs=vp9" if f == "webm" else by_name(f).mime,
            }
            for f in ordered
        ],
        "width": first["width"],
        "height": first["height"],
        "poster": poster["url"] if poster else None,
        "loop": loop,  # false for an animation that plays once (GIF loop count 1)
    }


def _position(spec: SrcsetSpec, fmt: str) -> int:
    return spec.formats.index(fmt) if fmt in spec.formats else len(spec.formats)


def encode_entry(entry: Mapping[str, Any]) -> str:
    """One source entry as its stable one-line JSON (also what snippets are fingerprinted by)."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False)


def dumps(base_url: str, encoded: Mapping[str, str]) -> bytes:
    """Stable text from `encode_entry` strings: sorted keys, one source per line."""
    lines = [
        f"    {json.dumps(rel, ensure_ascii=False)}: {text}"
        for rel, text in sorted(encoded.items())
    ]
    body = ",\n".join(lines)
    text = (
        (
            "{\n"
            f'  "base_url": {json.dumps(base_url)},\n'
            f'  "sources": {{\n{body}\n  }},\n'
            f'  "version": {VERSION}\n'
            "}\n"
        )
        if lines
        else (
            f'{{\n  "base_url": {json.dumps(base_url)},\n  "sources": {{}},\n'
            f'  "version": {VERSION}\n}}\n'
        )
    )
    return text.encode()


def load(path: Path) -> dict[str, Any]:
    """Read a manifest; refuse one with a schema this code does not know."""
    data = json.loads(Path(path).read_bytes())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: manifest version {data.get('version')!r}, expected {VERSION}")
    return data
