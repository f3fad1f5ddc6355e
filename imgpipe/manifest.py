"""The manifest: every source and rendition, as stable JSON for templates and tools.

Schema (`"version": 1`), all keys sorted, no timestamps, so two clean builds of the same
inputs give byte-identical files:

    {"base_url": "/img/", "version": 1, "sources": {"blog/cat.jpg": {
        "width", "height", "format", "bytes", "sha256",
        "warnings": [{"label", "code", "message"}],
        "renditions": {"800-webp": {"url", "path", "width", "height", "format", "mime",
                                    "bytes", "density", "options"}},
        "srcsets": {"default": {"name", "sizes", "fallback", "order", "src", "width", "height",
                                "formats": {"webp": [{"url", "width"}], "jpeg": [...]}}}}}}

One source per line: diffs between builds stay readable and writing stays fast for 10,000
sources (json's C encoder is only used without `indent`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import SrcsetSpec
from .engine.types import SourceInfo
from .formats import MODERN_ORDER, by_name
from .plan import PlannedRendition, SourcePlan, output_name
from .state import Record

VERSION = 1


def rendition_entry(relpath: str, planned: PlannedRendition, record: Record,
                    base_url: str) -> dict[str, Any]:
    path = output_name(relpath, planned.label, planned.key, record.format)
    return {
        "url": base_url + path,
        "path": path,
        "width": record.width,
        "height": record.height,
        "format": record.format,
        "mime": by_name(record.format).mime,
        "bytes": record.bytes,
        "density": planned.density,
        "options": planned.options,
    }


def source_entry(plan: SourcePlan, info: SourceInfo, records: Mapping[str, Record],
                 base_url: str) -> dict[str, Any]:
    """A source's manifest entry from its plan, header info and the records of the renditions
    that exist (`records` by cache key; failed renditions are simply absent)."""
    rel = plan.source.relpath
    renditions: dict[str, dict[str, Any]] = {}
    warnings: list[dict[str, str]] = []
    for planned in plan.renditions:
        record = records.get(planned.key)
        if record is None:
            continue
        renditions[planned.label] = rendition_entry(rel, planned, record, base_url)
        warnings.extend({"label": planned.label, "code": code, "message": message}
                        for code, message in record.warnings)
    srcsets = {}
    for spec in plan.srcsets:
        group = srcset_entry(spec, [p for p in plan.renditions if p.group == spec.name],
                             renditions)
        if group:
            srcsets[spec.name] = group
    return {
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "bytes": info.bytes,
        "sha256": plan.sha256,
        "warnings": sorted(warnings, key=lambda w: (w["label"], w["code"], w["message"])),
        "renditions": renditions,
        "srcsets": srcsets,
    }


def srcset_entry(spec: SrcsetSpec, planned: list[PlannedRendition],
                 renditions: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Group a family's renditions by their actual format. Widths a small source could not
    reach come out equal; a srcset lists each width once (the first, smallest request)."""
    by_format: dict[str, dict[int, str]] = {}
    largest: dict[str, dict[str, Any]] = {}
    for p in sorted(planned, key=lambda p: (p.width or 0)):
        entry = renditions.get(p.label)
        if entry is None:
            continue
        fmt = entry["format"]
        by_format.setdefault(fmt, {}).setdefault(entry["width"], entry["url"])
        if fmt not in largest or entry["width"] > largest[fmt]["width"]:
            largest[fmt] = entry
    if not by_format:
        return None
    # Modern formats go into <source> elements; the first other one is what <img> shows.
    order = sorted(by_format, key=lambda f: (MODERN_ORDER.index(f) if f in MODERN_ORDER
                                             else len(MODERN_ORDER), _position(spec, f)))
    fallback = next((f for f in order if f not in MODERN_ORDER), order[-1])
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
        "formats": {f: [{"url": url, "width": w} for w, url in sorted(by_format[f].items())]
                    for f in order},
    }


def _position(spec: SrcsetSpec, fmt: str) -> int:
    return spec.formats.index(fmt) if fmt in spec.formats else len(spec.formats)


def encode_entry(entry: Mapping[str, Any]) -> str:
    """One source entry as its stable one-line JSON (also what snippets are fingerprinted by)."""
    return json.dumps(entry, sort_keys=True, ensure_ascii=False)


def dumps(base_url: str, encoded: Mapping[str, str]) -> bytes:
    """Stable text from `encode_entry` strings: sorted keys, one source per line."""
    lines = [f"    {json.dumps(rel, ensure_ascii=False)}: {text}"
             for rel, text in sorted(encoded.items())]
    body = ",\n".join(lines)
    text = (
        "{\n"
        f'  "base_url": {json.dumps(base_url)},\n'
        f'  "sources": {{\n{body}\n  }},\n'
        f'  "version": {VERSION}\n'
        "}\n"
    ) if lines else (
        f'{{\n  "base_url": {json.dumps(base_url)},\n  "sources": {{}},\n'
        f'  "version": {VERSION}\n}}\n'
    )
    return text.encode()


def load(path: Path) -> dict[str, Any]:
    """Read a manifest; refuse one with a schema this code does not know."""
    data = json.loads(Path(path).read_bytes())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: manifest version {data.get('version')!r}, expected {VERSION}")
    return data
