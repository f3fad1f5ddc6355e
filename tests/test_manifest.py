"""Manifest entries and srcset groups from plans and records (no engine, no files)."""

from __future__ import annotations

import json

from imgpipe.config import SrcsetSpec
from imgpipe.manifest import dumps, encode_entry, source_entry
from imgpipe.model import SourceInfo
from imgpipe.plan import PlannedRendition, SourcePlan
from imgpipe.sources import SourceFile
from imgpipe.state import Record


def planned(label, key, fmt, width=None, group=None):
    return PlannedRendition(label, f"{width},format={fmt}", key, fmt, 1.0, group, width)


def source(renditions, srcsets=()):
    f = SourceFile("blog/cat.jpg", "/x/blog/cat.jpg", 10, 1, 1, 1)
    return SourcePlan(f, "ab" * 32, tuple(renditions), tuple(srcsets))


def record(key, fmt, width, height, warnings=(), size=None):
    size = size or {"avif": 60, "webp": 80}.get(fmt, 100)  # modern formats save, as usual
    return Record(key, fmt, width, height, size, "medium", 75, warnings)


SPEC = SrcsetSpec("default", "50vw", (480, 800, 1200), ("avif", "webp", "jpeg"))


def family(actual_widths):
    plans, records = [], {}
    for w, actual in zip(SPEC.widths, actual_widths, strict=True):
        for fmt in SPEC.formats:
            key = f"{fmt}{w}".ljust(64, "0")
            plans.append(planned(f"{w}-{fmt}", key, fmt, w, "default"))
            records[key] = record(key, fmt, actual, actual * 3 // 4)
    return plans, records


def test_srcset_lists_each_actual_width_once_and_picks_the_fallback():
    plans, records = family([480, 800, 1000])  # a 1000 px source: 1200 comes out at 1000
    entry = source_entry(source(plans, [SPEC]), SourceInfo(1000, 750, "jpeg", 10), records, "/img/")
    group = entry["srcsets"]["default"]
    assert group["order"] == ["avif", "webp", "jpeg"] and group["fallback"] == "jpeg"
    assert [i["width"] for i in group["formats"]["avif"]] == [480, 800, 1000]
    assert group["src"].startswith("/img/blog/cat-1200-jpeg.jpeg1200")
    assert (group["width"], group["height"]) == (1000, 750)


def test_equal_widths_keep_the_smallest_request():
    plans, records = family([480, 480, 480])  # a tiny source
    entry = source_entry(source(plans, [SPEC]), SourceInfo(480, 360, "jpeg", 10), records, "/")
    assert [i["url"] for i in entry["srcsets"]["default"]["formats"]["webp"]] == [
        "/blog/cat-480-webp.webp4800.webp"
    ]


def test_only_modern_formats_fall_back_to_the_last_one():
    spec = SrcsetSpec("default", "100vw", (480,), ("avif", "webp"))
    plans = [
        planned("480-avif", "a" * 64, "avif", 480, "default"),
        planned("480-webp", "w" * 64, "webp", 480, "default"),
    ]
    records = {
        "a" * 64: record("a" * 64, "avif", 480, 360),
        "w" * 64: record("w" * 64, "webp", 480, 360),
    }
    group = source_entry(source(plans, [spec]), SourceInfo(480, 360, "jpeg", 1), records, "/")[
        "srcsets"
    ]["default"]
    assert group["fallback"] == "webp" and group["order"] == ["avif", "webp"]


def test_failed_renditions_are_absent_and_warnings_are_labelled():
    plans = [planned("a", "1" * 64, "jpeg", 100), planned("b", "2" * 64, "webp", 100)]
    records = {"1" * 64: record("1" * 64, "jpeg", 100, 75, (("lossless-resized", "m"),))}
    entry = source_entry(source(plans), SourceInfo(200, 150, "jpeg", 1), records, "/")
    assert list(entry["renditions"]) == ["a"] and entry["srcsets"] == {}
    assert entry["warnings"] == [{"label": "a", "code": "lossless-resized", "message": "m"}]
    rendition = entry["renditions"]["a"]
    assert rendition == {
        "url": "/blog/cat-a.11111111.jpg",
        "path": "blog/cat-a.11111111.jpg",
        "width": 100,
        "height": 75,
        "format": "jpeg",
        "mime": "image/jpeg",
        "bytes": 100,
        "density": 1.0,
        "options": "100,format=jpeg",
        "quality": "medium",
        "encoder_quality": 75,
        "score": None,
    }


def test_dumps_is_stable_json_one_source_per_line():
    a = {"width": 1, "renditions": {}, "b": [1]}
    text = dumps("/img/", {"z.jpg": encode_entry(a), "a.jpg": encode_entry(a)}).decode()
    data = json.loads(text)
    assert data == {"base_url": "/img/", "version": 1, "sources": {"a.jpg": a, "z.jpg": a}}
    assert text.splitlines()[3] == '    "a.jpg": {"b": [1], "renditions": {}, "width": 1},'
    assert json.loads(dumps("/", {})) == {"base_url": "/", "sources": {}, "version": 1}
