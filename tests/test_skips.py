"""A modern format that loses at its largest width is not encoded at the others (skips.py).

The example badge is a palette graphic: at quality=low its PNG beats its WebP at every width,
so the manifest leaves WebP out of the group, while its AVIF wins at the largest width and stays. Real builds with the real engine; the encoder
is only watched (every call goes through to libvips)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from test_build import config

from imgpipe import build as b
from imgpipe import skips

REPO = Path(__file__).resolve().parents[1]
WIDTHS = [64, 128, 256]
RULES = [
    {
        "include": ["*.png"],
        "widths": WIDTHS,
        "formats": ["avif", "webp", "png"],
        "options": "quality=low",
        "sizes": "10rem",
    }
]


@pytest.fixture()
def encodes(monkeypatch) -> list[tuple[str, int]]:
    """(format, width) of every encode the build makes, quality searches included."""
    pytest.importorskip("pyvips")
    from imgpipe.engine import optimise

    real, seen, lock = optimise.encode, [], threading.Lock()

    def watched(image, encoding, *args, **kwargs):
        with lock:
            seen.append((encoding.format, image.width))
        return real(image, encoding, *args, **kwargs)

    monkeypatch.setattr(optimise, "encode", watched)
    return seen


def badge_site(root: Path, sizes: str = "10rem"):
    """The badge's site (made once) and its config, with the family's `sizes`."""
    if not (root / "images").is_dir():
        (root / "images").mkdir(parents=True)
        shutil.copy(REPO / "example-site/images/graphics/badge.png", root / "images")
    return config(root, [{**RULES[0], "sizes": sizes}], snippets="snippets")


def outputs(root: Path) -> tuple[dict, dict[str, bytes]]:
    manifest = json.loads((root / "public/img/imgpipe-manifest.json").read_text())
    snippets = {str(p.relative_to(root)): p.read_bytes() for p in (root / "snippets").rglob("*")}
    return manifest["sources"]["badge.png"], snippets


def test_losing_modern_formats_are_encoded_only_at_their_largest_width(tmp_path, encodes):
    summary = b.build(badge_site(tmp_path))
    assert summary.ok
    encoded = {(fmt, width) for fmt, width in encodes}
    for width in WIDTHS:
        assert ("png", width) in encoded
    assert ("avif", 256) in encoded and ("webp", 256) in encoded
    # WebP's smaller widths: never encoded (a probe is at skips' own size, not these); AVIF
    # won at its largest, so every width of it is.
    assert not {(f, w) for f, w in encoded if f == "webp" and w in (64, 128)}
    assert {("avif", 64), ("avif", 128)} <= encoded
    entry, _ = outputs(tmp_path)
    group = entry["srcsets"]["default"]
    assert group["order"] == ["avif", "png"]
    skipped = [d for d in group["dropped"] if d["url"] is None]
    assert {(d["format"], d["width"]) for d in skipped} == {("webp", 64), ("webp", 128)}
    assert all(d["bytes"] is None and d["reason"].startswith("not encoded") for d in skipped)
    assert set(entry["renditions"]) == {f"{w}-{f}" for w in WIDTHS for f in ("avif", "png")} | {
        "256-webp"
    }
    assert summary.built == 7
    written = {p.name.split(".")[0] for p in (tmp_path / "public/img").glob("badge-*")}
    assert written == {f"badge-{label}" for label in entry["renditions"]}


def test_skipping_gives_the_manifest_and_html_of_encoding_then_dropping(
    tmp_path, encodes, monkeypatch
):
    b.build(badge_site(tmp_path / "skip"))
    skipping, skip_encodes = outputs(tmp_path / "skip"), len(encodes)
    with monkeypatch.context() as m:  # the behaviour before: every rendition encoded
        m.setattr(skips, "doomed", lambda *args: {})
        b.build(badge_site(tmp_path / "all"))
    (entry, snippets), (all_entry, all_snippets) = skipping, outputs(tmp_path / "all")
    assert {("webp", 64), ("webp", 128)} <= set(encodes[skip_encodes:])  # encoded this time
    assert snippets == all_snippets and snippets  # the same <picture>, byte for byte
    group, all_group = entry["srcsets"]["default"], all_entry["srcsets"]["default"]
    assert {k: v for k, v in group.items() if k != "dropped"} == {
        k: v for k, v in all_group.items() if k != "dropped"
    }
    # Dropped alike: the same (format, width), and where encoded, the same file and reason.
    assert [(d["format"], d["width"]) for d in group["dropped"]] == [
        (d["format"], d["width"]) for d in all_group["dropped"]
    ]
    for mine, theirs in zip(group["dropped"], all_group["dropped"], strict=True):
        if mine["url"] is not None:
            assert mine == theirs
    # The renditions that were encoded are the very same files (content-hashed names).
    unencoded = {f"{d['width']}-{d['format']}" for d in group["dropped"] if d["url"] is None}
    assert unencoded and set(all_entry["renditions"]) - set(entry["renditions"]) == unencoded
    for label, rendition in entry["renditions"].items():
        assert rendition == all_entry["renditions"][label]
    assert {k: v for k, v in entry.items() if k not in ("renditions", "srcsets")} == {
        k: v for k, v in all_entry.items() if k not in ("renditions", "srcsets")
    }


def test_a_rebuild_neither_encodes_the_skipped_renditions_nor_writes_them(
    tmp_path, encodes, monkeypatch
):
    assert b.build(badge_site(tmp_path / "fresh")).ok
    fresh = outputs(tmp_path / "fresh")
    encodes.clear()
    # A config change that changes no rendition: the stamp differs, so the plan runs again.
    again = b.build(badge_site(tmp_path / "fresh", sizes="12rem"))
    assert again.ok and again.built == 0 and encodes == []
    assert (
        outputs(tmp_path / "fresh")[0]["srcsets"]["default"]["dropped"]
        == (fresh[0]["srcsets"]["default"]["dropped"])
    )
    # A cache that holds the smaller widths (a build that encoded them): nothing is encoded,
    # and they are neither written nor listed: outputs never depend on what the cache holds.
    with monkeypatch.context() as m:
        m.setattr(skips, "doomed", lambda *args: {})
        b.build(badge_site(tmp_path / "old"))
    encodes.clear()
    assert b.build(badge_site(tmp_path / "old", sizes="12rem")).built == 0 and encodes == []
    assert outputs(tmp_path / "old") == outputs(tmp_path / "fresh")
    files = {p.name for p in (tmp_path / "old/public/img").iterdir()}
    assert files == {p.name for p in (tmp_path / "fresh/public/img").iterdir()}
    items = b.dry_run(badge_site(tmp_path / "old", sizes="12rem"))
    assert {i.label for i in items} == {f"{w}-{f}" for w in WIDTHS for f in ("avif", "png")} | {
        "256-webp"
    }


def test_doomed_keeps_a_key_another_label_still_needs(tmp_path):
    """Two rules asking one source for the same rendition share its key: a group where the
    format lost must not take it from a group where it did not."""
    from imgpipe.family import SrcsetSpec
    from imgpipe.model import Record, SourceInfo
    from imgpipe.plan import PlannedRendition, SourcePlan
    from imgpipe.sources import SourceFile

    def planned(group: str, width: int, fmt: str, key: str | None = None) -> PlannedRendition:
        key = key or f"{group}-{width}-{fmt}"
        return PlannedRendition(f"{group}-{width}-{fmt}", "", key, fmt, 1.0, group, width)

    members = [planned(g, w, f) for g in ("a", "b") for w in (100, 200) for f in ("webp", "jpeg")]
    shared = planned("b", 100, "webp", key="a-100-webp")
    members = [shared if p.label == shared.label else p for p in members]
    specs = tuple(SrcsetSpec(g, "100vw", (100, 200), ("webp", "jpeg")) for g in ("a", "b"))
    plan = SourcePlan(SourceFile("x.jpg", "/x.jpg", 1, 1, 1, 1), "0", tuple(members), specs)
    sizes = {"a-200-webp": 990, "a-200-jpeg": 1000, "b-200-webp": 500, "b-200-jpeg": 1000}
    records = {k: Record(k, k.split("-")[2], 200, 100, n, "medium", 50) for k, n in sizes.items()}
    gone = skips.doomed(plan, SourceInfo(400, 200, "jpeg", 1), records)
    # Group a's WebP lost (1% smaller): its 100 px would go, but group b needs the same key.
    assert gone == {}
    own = [planned("b", 100, "webp") if m is shared else m for m in members]
    unshared = SourcePlan(plan.source, "0", tuple(own), specs)
    assert set(skips.doomed(unshared, SourceInfo(400, 200, "jpeg", 1), records)) == {"a-100-webp"}


CLUSTER_TOML = """
source = "images"
output = "public"
cache_dir = ".cache"
{extra}

[[rules]]
include = ["*.png"]
widths = [64, 128, 256]
formats = ["avif", "webp", "png"]
options = "quality=low"
"""


def test_a_cluster_build_skips_alike_and_writes_the_local_bytes(tmp_path, s3, dask_cluster):
    """Workers decide what to leave out as the local build does: the same files, manifest
    included (the decision follows from the tops' records, whoever encoded them)."""
    import uuid

    from cluster_support import cli
    from site_support import files

    url = s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    built = {}
    for name, extra, env in (
        ("local", "", {}),
        (
            "cluster",
            f'remote_cache = "{url}/site"',
            {**s3.env(), "IMGPIPE_SCHEDULER": dask_cluster.address},
        ),
    ):
        root = tmp_path / name
        badge_site(root)
        (root / "imgpipe.toml").write_text(CLUSTER_TOML.format(extra=extra))
        done = cli(root, "build", env=env)
        assert done.returncode == 0, done.stderr
        built[name] = files(root / "public")
    assert built["cluster"] == built["local"]
    manifest = json.loads(built["local"]["imgpipe-manifest.json"])
    dropped = manifest["sources"]["badge.png"]["srcsets"]["default"]["dropped"]
    assert [(d["format"], d["width"]) for d in dropped if d["url"] is None] == [
        ("webp", 64),
        ("webp", 128),
    ]
    assert not [n for n in built["local"] if "-64-webp" in n or "-128-webp" in n]
