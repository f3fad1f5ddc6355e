"""The cache keeps what it may need again (issue 12, item 9): encoded results that no build
uses any more stay in `cache_dir` within `cache_keep` bytes, least recently used going first,
so putting a source back (an undo while `watch` or `mkdocs serve` rebuilds) costs a copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_build import config, site, snapshot

from imgpipe import build as b
from imgpipe.config import CACHE_KEEP, from_dict
from imgpipe.errors import ConfigError

RULES = [{"include": ["**/*.jpg"], "renditions": {"thumb": "100x100,crop", "big": "400"}}]


def blob_bytes(cache: Path) -> tuple[int, int]:
    """Bytes of the blobs some scope uses, and of the others (retired), from the state."""
    db = sqlite3.connect(cache / "state.sqlite")
    used = {k for (k,) in db.execute("SELECT key FROM used")}
    sizes = dict(db.execute("SELECT key, bytes FROM record").fetchall())
    db.close()
    on_disk = {p.name: p.stat().st_size for p in (cache / "blobs").rglob("*") if p.is_file()}
    assert set(on_disk) == set(sizes)  # every record has its blob, no blob lacks a record
    return (
        sum(n for k, n in on_disk.items() if k in used),
        sum(n for k, n in on_disk.items() if k not in used),
    )


def test_reverting_a_source_costs_a_copy_not_an_encode(tmp_path, fake_engine):
    root = site(tmp_path)
    cfg = config(root, rules=RULES)
    photo = root / "images/a.jpg"
    original = photo.read_bytes()
    first = b.build(cfg, engine=fake_engine)
    assert (first.built, first.failed) == (6, 0)
    published = {k: v[1] for k, v in snapshot(root / "public/img").items()}

    photo.write_bytes(original + b" retouched")
    edited = b.build(cfg, engine=fake_engine)
    assert (edited.built, edited.cached, edited.files_removed) == (2, 4, 2)
    renders = fake_engine.renders

    photo.write_bytes(original)  # the undo
    undone = b.build(cfg, engine=fake_engine)
    assert (undone.built, undone.cached, undone.failed) == (0, 6, 0)
    assert fake_engine.renders == renders
    assert {k: v[1] for k, v in snapshot(root / "public/img").items()} == published


def test_retired_results_stay_within_the_budget_least_recently_used_first(tmp_path, fake_engine):
    root = site(tmp_path)
    # The fake engine's JPEGs are 128 bytes: a version of a.jpg (thumb + big) is 256 bytes,
    # so a budget of 600 keeps the last two versions and not a third.
    cfg = config(root, rules=RULES, cache_keep=600)
    photo = root / "images/a.jpg"
    versions = [b"300x200\nversion %d" % i for i in range(5)]
    used = None
    for version in versions:
        photo.write_bytes(version)
        b.build(cfg, engine=fake_engine)
        used_now, retired = blob_bytes(root / ".cache")
        assert retired <= 600
        used = used_now if used is None else used
        assert used_now == used  # one version in use at a time, same size
    assert blob_bytes(root / ".cache")[1] == 512  # versions 2 and 3 kept, 0 and 1 gone

    renders = fake_engine.renders
    for version, encodes in ((3, 0), (2, 0), (0, 2)):  # recent ones are copies; the oldest not
        photo.write_bytes(versions[version])
        s = b.build(cfg, engine=fake_engine)
        assert (s.built, fake_engine.renders - renders) == (encodes, encodes), version
        renders = fake_engine.renders
        assert blob_bytes(root / ".cache")[1] <= 600


def test_a_budget_of_zero_keeps_only_what_is_used(tmp_path, fake_engine):
    root = site(tmp_path)
    cfg = config(root, rules=RULES, cache_keep=0)
    photo = root / "images/a.jpg"
    original = photo.read_bytes()
    b.build(cfg, engine=fake_engine)
    photo.write_bytes(original + b" retouched")
    b.build(cfg, engine=fake_engine)
    assert blob_bytes(root / ".cache")[1] == 0
    photo.write_bytes(original)
    assert b.build(cfg, engine=fake_engine).built == 2


@pytest.mark.parametrize(
    "value,expected",
    [(None, CACHE_KEEP), (0, 0), (5000, 5000), ("256 MB", 256_000_000), ("1.5gb", 1_500_000_000)],
)
def test_cache_keep_reads_bytes_or_a_size(tmp_path, value, expected):
    extra = {} if value is None else {"cache_keep": value}
    raw = {"source": "images", "output": "out", "rules": RULES, **extra}
    assert from_dict(raw, tmp_path).cache_keep == expected


@pytest.mark.parametrize(
    "value,message",
    [
        (
            "lots",
            "'lots' at cache_keep: expected a size such as 256 MB (B, KB, MB or GB) or an "
            "integer of bytes",
        ),
        (-1, "'-1' at cache_keep: expected an integer of at least 0"),
    ],
)
def test_a_bad_cache_keep_says_what_is_expected(tmp_path, value, message):
    raw = {"source": "images", "output": "out", "rules": RULES, "cache_keep": value}
    with pytest.raises(ConfigError) as info:
        from_dict(raw, tmp_path)
    assert info.value.problems[0].message == message
