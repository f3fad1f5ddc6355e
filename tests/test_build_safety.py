"""Nothing lost: a build touches only what it wrote for its own project (fake engine, real
files). Issue 18, items 1 and 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgpipe import build as b
from imgpipe.cli import main
from imgpipe.config import load
from imgpipe.errors import ConfigError

RULES = """
[[rules]]
include = ["**/*.jpg"]
renditions = { thumb = "100x100,crop", big = "400" }

[[rules]]
include = ["blog/*.jpg"]
widths = [100, 200]
formats = ["webp", "jpeg"]
"""


def project(root: Path, name: str, output: str, cache_dir: str = ".cache", extra: str = "") -> Path:
    """A config file `name` in `root`, its own sources under `<stem>-images`."""
    src = root / f"{Path(name).stem}-images"
    (src / "blog").mkdir(parents=True, exist_ok=True)
    (src / "a.jpg").write_text(f"300x200\n{name}")
    (src / "blog" / "cat.jpg").write_text(f"800x600\n{name}")
    path = root / name
    path.write_text(
        f'source = "{src.name}"\noutput = "{output}"\ncache_dir = "{cache_dir}"\n'
        f"jobs = 2\n{extra}\n{RULES}"
    )
    return path


def files(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_shared_cache_dir_keeps_other_projects_outputs(tmp_path, fake_engine):
    one = load(project(tmp_path, "one.toml", "public/one"))
    two = load(project(tmp_path, "two.toml", "public/two"))
    assert one.cache_dir == two.cache_dir
    b.build(one, engine=fake_engine)
    b.build(two, engine=fake_engine)
    first = files(tmp_path / "public")
    assert "one/imgpipe-manifest.json" in first and "two/imgpipe-manifest.json" in first
    renders = fake_engine.renders

    # Second runs: both no-ops, nothing of the other project touched or re-rendered.
    for config in (one, two, one, two):
        s = b.build(config, engine=fake_engine)
        assert (s.built, s.files_written, s.files_removed) == (0, 0, 0)
    assert fake_engine.renders == renders and files(tmp_path / "public") == first

    # One project's garbage collection keeps what the other still uses: `one` drops a rule,
    # `two`'s outputs are wiped (a fresh CI checkout), and come back from the shared blobs.
    text = (tmp_path / "one.toml").read_text()
    (tmp_path / "one.toml").write_text(text[: text.index("[[rules]]", text.index("big"))])
    b.build(load(tmp_path / "one.toml"), engine=fake_engine)
    for path in (tmp_path / "public/two").rglob("*"):
        if path.is_file():
            path.unlink()
    s = b.build(two, engine=fake_engine)
    assert (s.built, s.failed) == (0, 0) and s.cached == 8
    assert fake_engine.renders == renders
    assert {k: v[1] for k, v in files(tmp_path / "public/two").items()} == {
        k.removeprefix("two/"): v[1] for k, v in first.items() if k.startswith("two/")
    }


@pytest.mark.parametrize(
    "key,value,where",
    [
        ("manifest", "one-images/a.jpg", "manifest"),
        ("manifest", "one.toml", "manifest"),
        ("manifest", ".cache/m.json", "manifest"),
        ("manifest", "public", "manifest"),
        ("manifest", "one-images/blog", "manifest"),
        ("snippets", "one-images/snippets", "snippets"),
        ("snippets", ".cache/snippets", "snippets"),
    ],
)
def test_paths_the_build_writes_never_land_on_sources_cache_or_config(tmp_path, key, value, where):
    path = project(tmp_path, "one.toml", "public", extra=f'{key} = "{value}"')
    with pytest.raises(ConfigError) as info:
        load(path)
    problem = info.value.problems[0]
    assert (problem.code, problem.where) == ("overlapping-dirs", where)
    suggestion = "public/imgpipe-manifest.json" if key == "manifest" else "public/_snippets"
    assert problem.message.startswith(f"{value!r} at {key}: expected ")
    assert problem.message.endswith(f"; did you mean {suggestion!r}?")
    # `imgpipe check` says so (exit 2) and nothing was written over the source or config.
    before = files(tmp_path)
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 2 and f"error[overlapping-dirs]: {value!r} at {key}" in (
        result.output
    )
    assert files(tmp_path) == before


def test_manifest_over_the_source_photo_is_refused_by_check(tmp_path):
    """The finding itself: `manifest = "src/photo.jpg"` passed `imgpipe check`."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "photo.jpg").write_text("300x200\nP")
    (tmp_path / "imgpipe.toml").write_text(
        'source = "src"\noutput = "out"\nmanifest = "src/photo.jpg"\n'
        '[[rules]]\ninclude = ["*.jpg"]\nrenditions = { t = "100" }\n'
    )
    result = CliRunner().invoke(main, ["check", "-c", str(tmp_path / "imgpipe.toml")])
    assert result.exit_code == 2 and "manifest" in result.output
    assert (src / "photo.jpg").read_text() == "300x200\nP"


def test_stale_cleanup_keeps_a_file_the_user_restored(tmp_path, fake_engine):
    config = load(project(tmp_path, "one.toml", "public"))
    b.build(config, engine=fake_engine)
    manifest = json.loads((tmp_path / "public/imgpipe-manifest.json").read_text())
    thumb = tmp_path / "public" / manifest["sources"]["a.jpg"]["renditions"]["thumb"]["path"]
    big = tmp_path / "public" / manifest["sources"]["a.jpg"]["renditions"]["big"]["path"]
    # a.jpg goes away; the user puts their own file where its thumb was (same size even).
    (tmp_path / "one-images/a.jpg").unlink()
    mine = bytes(reversed(thumb.read_bytes()))
    thumb.write_bytes(mine)
    s = b.build(config, engine=fake_engine)
    assert thumb.read_bytes() == mine  # theirs now: kept
    assert not big.exists() and s.files_removed == 1  # still the build's own: removed
    # And the path is no longer the build's: a later build leaves it alone too.
    b.build(config, engine=fake_engine, force=True)
    assert thumb.read_bytes() == mine


V5_TABLES = {  # the state schema before scopes (5), as it was on disk
    "meta": "key TEXT PRIMARY KEY, value TEXT",
    "stat": "path TEXT PRIMARY KEY, size INT, mtime_ns INT, ctime_ns INT, inode INT, sha256 TEXT",
    "written": "path TEXT PRIMARY KEY, fingerprint TEXT, size INT, mtime_ns INT",
}


def test_state_from_before_scopes_is_migrated_not_re_encoded(tmp_path, fake_engine):
    import sqlite3

    config = load(project(tmp_path, "one.toml", "public"))
    b.build(config, engine=fake_engine)
    before, renders = files(tmp_path / "public"), fake_engine.renders
    db = sqlite3.connect(tmp_path / ".cache/state.sqlite")
    for table, columns in V5_TABLES.items():
        names = ", ".join(c.split()[0] for c in columns.split(", "))
        db.execute(f"ALTER TABLE {table} RENAME TO new_{table}")
        db.execute(f"CREATE TABLE {table} ({columns})")
        db.execute(f"INSERT INTO {table} SELECT {names} FROM new_{table}")
        db.execute(f"DROP TABLE new_{table}")
    db.execute("DROP TABLE used")
    db.execute("UPDATE meta SET value='5' WHERE key='schema'")
    db.execute("UPDATE meta SET value='' WHERE key='stamp'")  # no fast path: check it all
    db.commit()
    db.close()
    s = b.build(config, engine=fake_engine)
    assert (s.built, s.cached, s.files_written, s.files_removed) == (0, 8, 0, 0)
    assert fake_engine.renders == renders and files(tmp_path / "public") == before
    # The migrated records belong to this project: another one's GC keeps them.
    other = load(project(tmp_path, "two.toml", "public2", extra=""))
    b.build(other, engine=fake_engine)
    for path in (tmp_path / "public").rglob("*.jpg"):
        path.unlink()
    s = b.build(config, engine=fake_engine)
    assert s.built == 0 and fake_engine.renders == renders + 8
