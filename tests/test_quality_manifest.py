"""Smallest format in srcset groups: modern renditions that do not save are dropped, with why."""

from __future__ import annotations

from imgpipe.config import SrcsetSpec
from imgpipe.manifest import srcset_entry
from imgpipe.plan import PlannedRendition

SPEC = SrcsetSpec("default", "100vw", (480, 960), ("avif", "webp", "jpeg"))


def group(sizes: dict[tuple[str, int], int]):
    planned, renditions = [], {}
    for (fmt, width), size in sizes.items():
        label = f"{width}-{fmt}"
        planned.append(
            PlannedRendition(label, f"{width},format={fmt}", label * 8, fmt, 1.0, "default", width)
        )
        renditions[label] = {
            "url": f"/{label}",
            "width": width,
            "height": width // 2,
            "format": fmt,
            "bytes": size,
        }
    return srcset_entry(SPEC, planned, renditions)


def reasons(entry) -> dict[tuple[str, int], str]:
    return {(d["format"], d["width"]): d["reason"] for d in entry["dropped"]}


def test_modern_formats_that_save_are_kept():
    entry = group(
        {
            ("avif", 480): 50,
            ("webp", 480): 70,
            ("jpeg", 480): 100,
            ("avif", 960): 150,
            ("webp", 960): 200,
            ("jpeg", 960): 300,
        }
    )
    assert entry["order"] == ["avif", "webp", "jpeg"] and entry["dropped"] == []


def test_less_than_five_percent_smaller_than_the_fallback_is_dropped():
    entry = group({("webp", 480): 97, ("jpeg", 480): 100, ("webp", 960): 200, ("jpeg", 960): 300})
    assert [i["width"] for i in entry["formats"]["webp"]] == [960]
    assert reasons(entry) == {
        ("webp", 480): "97 bytes, 3% smaller than the jpeg of this width (100 bytes): less than 5%"
    }


def test_larger_than_the_format_below_is_dropped():
    entry = group(
        {
            ("avif", 480): 80,
            ("webp", 480): 70,
            ("jpeg", 480): 100,
            ("avif", 960): 150,
            ("webp", 960): 200,
            ("jpeg", 960): 300,
        }
    )
    assert reasons(entry) == {
        ("avif", 480): "80 bytes, larger than the webp of this width (70 bytes)"
    }
    assert entry["order"] == ["avif", "webp", "jpeg"]


def test_a_format_whose_largest_width_goes_is_dropped_whole():
    # Without its 960, a large screen would be served the 480 AVIF: a smaller image.
    entry = group({("avif", 480): 50, ("jpeg", 480): 100, ("avif", 960): 310, ("jpeg", 960): 300})
    assert entry["order"] == ["jpeg"] and "avif" not in entry["formats"]
    why = reasons(entry)
    assert why[("avif", 960)] == "310 bytes, larger than the jpeg of this width (300 bytes)"
    assert why[("avif", 480)].startswith("the largest avif (960 px) was dropped")
    assert entry["dropped"][0]["url"] == "/480-avif"
