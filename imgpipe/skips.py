"""Renditions not worth encoding: the smaller widths of a modern format that lost at its largest.

The manifest leaves a modern format (AVIF, WebP) out of a srcset group whole when its largest
width saves too little against the format below it (`manifest._not_smaller`). So a build
encodes the largest width of each format first (`tops`), and of a format that lost there,
it encodes no other width (`doomed`): those would be written only to be left out. They get
no record and no file; the manifest lists them under `dropped` without url or bytes.

Which renditions are doomed follows from the records of the tops alone, and a record from
its cache key alone: the answer is the same on every build, local or on a cluster, from
fresh renditions or from the cache, so a no-op rebuild stays a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .family import SrcsetSpec
from .formats import AUTO, MODERN_ORDER, by_name
from .manifest import srcset_entry
from .model import Record, SourceInfo
from .plan import PlannedRendition, SourcePlan


def tops(plan: SourcePlan) -> frozenset[str]:
    """Cache keys of the largest width of each format, in every group a modern format could
    lose in: encode these before the others (`doomed` decides from them)."""
    return frozenset(p.key for _, members, top in _groups(plan) for p in members if p.width == top)


def doomed(plan: SourcePlan, info: SourceInfo, records: Mapping[str, Record]) -> dict[str, str]:
    """Cache key -> why it need not be encoded, from the `records` (by key) of the tops. A
    group whose tops are not all there (not encoded yet, or failed) dooms nothing; a key some
    other label still needs is kept."""
    if info.frames > 1:  # an animation's group offers other formats (manifest.srcset_entry)
        return {}
    why: dict[str, str] = {}
    for spec, members, top in _groups(plan):
        at_top = [p for p in members if p.width == top]
        found = {p.label: records.get(p.key) for p in at_top}
        sized: dict[str, dict[str, Any]] = {
            label: {"format": r.format, "width": r.width, "height": r.height, "bytes": r.bytes}
            | {"url": label}
            for label, r in found.items()
            if r is not None
        }
        if len(sized) < len(at_top):
            continue
        group = srcset_entry(spec, at_top, sized)
        for lost in group["dropped"] if group else ():
            reason = (
                f"not encoded: the largest {lost['format']} ({lost['width']} px) was dropped; "
                "without it large screens would get a smaller image"
            )
            why.update(
                (p.label, reason) for p in members if p.format == lost["format"] and p.width != top
            )
    needed = {p.key for p in plan.renditions if p.label not in why}
    return {p.key: why[p.label] for p in plan.renditions if p.label in why and p.key not in needed}


def _groups(plan: SourcePlan) -> Iterator[tuple[SrcsetSpec, list[PlannedRendition], int]]:
    """Each srcset group and art direction variant with a modern format and a format below
    it, all named still formats: (spec, members, largest width asked for)."""
    for spec in plan.srcsets:
        members = [p for p in plan.renditions if p.group == spec.name]
        for art in {p.art for p in members}:
            variant = [p for p in members if p.art == art and p.width is not None]
            formats = {p.format for p in variant}
            if (
                len(formats) > 1
                and formats & set(MODERN_ORDER)
                and all(f != AUTO and not by_name(f).video for f in formats)
            ):
                yield spec, variant, max(p.width or 0 for p in variant)
