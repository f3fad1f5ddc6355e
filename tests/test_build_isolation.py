"""One problem source is that source's clean error; links never leave the source tree unasked
(fake engine, real files). Issue 18, items 3, 4 and 9."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgpipe import build as b
from imgpipe import sources
from imgpipe.cli import main
from imgpipe.config import from_dict
from imgpipe.errors import ConfigError
from imgpipe.plan import NAME_MAX

RULES = [
    {"include": ["**/*.jpg"], "renditions": {"thumb": "100x100,crop"}},
    {"include": ["**/*.jpg"], "widths": [100, 200], "formats": ["webp", "jpeg"]},
]


def site(root: Path, **extra):
    src = root / "images"
    src.mkdir(parents=True)
    (src / "a.jpg").write_text("300x200\nA")
    (src / "b.jpg").write_text("640x480\nB")
    return from_dict(
        {
            "source": "images",
            "output": "public",
            "cache_dir": ".cache",
            "jobs": 2,
            "rules": RULES,
            **extra,
        },
        root,
    )


def manifest(root: Path) -> dict:
    return json.loads((root / "public/imgpipe-manifest.json").read_text())["sources"]


def failures(summary) -> dict[str, tuple[str, str]]:
    return {f.source: (f.stage, f.code) for f in summary.failures}


def test_symlink_loop_is_one_sources_error(tmp_path, fake_engine):
    config = site(tmp_path)
    os.symlink("loop.jpg", tmp_path / "images/loop.jpg")
    s = b.build(config, engine=fake_engine)
    assert failures(s) == {"loop.jpg": ("discover", "symlink-loop")}
    assert sorted(manifest(tmp_path)) == ["a.jpg", "b.jpg"]
    # `imgpipe check` lists the good sources and names the bad one (exit 1), no traceback.
    (tmp_path / "imgpipe.toml").write_text(
        'source = "images"\noutput = "public"\ncache_dir = ".cache"\n[[rules]]\n'
        'include = ["*.jpg"]\nrenditions = { t = "100" }\n'
    )
    result = CliRunner().invoke(main, ["check", "-c", str(tmp_path / "imgpipe.toml")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error[symlink-loop]: loop.jpg: discover: cannot read it" in result.output
    assert "a.jpg: t" in result.output and "b.jpg: t" in result.output


def test_name_too_long_for_rendition_names_is_shortened(tmp_path, fake_engine):
    config = site(tmp_path)
    stem = "猫" * 83  # 249 bytes: the source fits, `-thumb.1a2b3c4d.jpg` would not
    (tmp_path / f"images/{stem}.jpg").write_text("300x200\nC")
    s = b.build(config, engine=fake_engine)
    assert s.ok and s.failed == 0
    entry = manifest(tmp_path)[f"{stem}.jpg"]
    paths = [r["path"] for r in entry["renditions"].values()]
    assert len(paths) == 5 and len(set(paths)) == 5
    for path in paths:
        assert len(path.encode()) <= NAME_MAX and (tmp_path / "public" / path).is_file()
        assert path.startswith("猫" * 20) and "~" in path
    snippets = list((tmp_path / "public/_snippets").iterdir())
    assert len(snippets) == 3 and all(len(p.name.encode()) <= NAME_MAX for p in snippets)
    # The names are stable: a second build is a no-op.
    again = b.build(config, engine=fake_engine)
    assert (again.built, again.files_written) == (0, 0)


@pytest.mark.parametrize(
    "trouble,code",
    [
        ("directory", "source-vanished"),
        ("deleted", "source-vanished"),
        ("unreadable", "unreadable"),
    ],
)
def test_unreadable_source_is_one_sources_error(tmp_path, fake_engine, monkeypatch, trouble, code):
    """Between listing and hashing, c.jpg becomes a directory, is deleted, or cannot be
    opened (tests run as root, which reads any file: the open is refused at the boundary)."""
    config = site(tmp_path)
    bad = tmp_path / "images/c.jpg"
    bad.write_text("300x200\nC")
    real_scan, real_open = sources.scan, open

    def scan_then_break(cfg):
        found = real_scan(cfg)
        if trouble == "directory":
            bad.unlink()
            bad.mkdir()
        elif trouble == "deleted":
            bad.unlink()
        return found

    def refusing_open(path, *args, **kwargs):
        if str(path) == str(bad):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(b, "scan", scan_then_break)
    if trouble == "unreadable":
        monkeypatch.setattr(sources, "open", refusing_open, raising=False)
    s = b.build(config, engine=fake_engine)
    assert failures(s) == {"c.jpg": ("read", code)}
    assert sorted(manifest(tmp_path)) == ["a.jpg", "b.jpg"]
    assert s.built == 10 and s.failed == 1


def test_symlink_out_of_source_is_not_followed(tmp_path, fake_engine):
    config = site(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "photo.jpg").write_text("300x200\nSECRET")
    os.symlink("/etc/passwd", tmp_path / "images/passwd.jpg")
    os.symlink(elsewhere / "photo.jpg", tmp_path / "images/outside.jpg")
    os.symlink("a.jpg", tmp_path / "images/inside.jpg")  # inside the tree: a source
    s = b.build(config, engine=fake_engine)
    assert s.ok and sorted(manifest(tmp_path)) == ["a.jpg", "b.jpg", "inside.jpg"]
    notes = {w.source: w.code for w in s.warnings}
    assert notes == {"outside.jpg": "outside-source", "passwd.jpg": "outside-source"}
    published = b"".join(p.read_bytes() for p in (tmp_path / "public").rglob("*") if p.is_file())
    assert b"SECRET" not in published
    # Opting in follows them (and /etc/passwd is then simply not an image).
    config = site(tmp_path / "optin", follow_symlinks=True)
    os.symlink("/etc/passwd", tmp_path / "optin/images/passwd.jpg")
    os.symlink(elsewhere / "photo.jpg", tmp_path / "optin/images/outside.jpg")
    s = b.build(config, engine=fake_engine)
    assert "outside.jpg" in manifest(tmp_path / "optin")
    assert failures(s) == {"passwd.jpg": ("load", "unreadable")}


def test_output_through_symlinked_dir_is_refused(tmp_path):
    (tmp_path / "images").mkdir()
    os.symlink(tmp_path / "images", tmp_path / "link")
    for raw in (
        {"output": "link/out"},
        {"cache_dir": "link/.cache"},
        {"snippets": "link/snippets"},
    ):
        with pytest.raises(ConfigError) as info:
            from_dict({"source": "images", "output": "public", "rules": RULES, **raw}, tmp_path)
        assert info.value.problems[0].code == "overlapping-dirs"
        assert info.value.problems[0].where == next(iter(raw))


def test_follow_symlinks_must_be_a_boolean(tmp_path):
    with pytest.raises(ConfigError) as info:
        from_dict(
            {"source": "images", "output": "public", "rules": RULES, "follow_symlinks": "yes"},
            tmp_path,
        )
    assert str(info.value) == (
        "bad-type: 'yes' at follow_symlinks: expected true or false, not a string"
    )


def test_not_an_image_error_never_quotes_its_bytes():
    pytest.importorskip("pyvips")
    from imgpipe import engine
    from imgpipe.errors import ImageError

    data = Path("/etc/passwd").read_bytes()
    with pytest.raises(ImageError) as info:
        engine.open_source(data, engine.Limits())
    text = str(info.value)
    assert info.value.code == "unknown-format"
    assert data[:4].hex() not in text.replace(" ", "") and data[:4].decode() not in text


def test_source_over_max_bytes_is_reported_without_reading_it(tmp_path, fake_engine, monkeypatch):
    config = site(tmp_path, limits={"max_bytes": 1000})
    big = tmp_path / "images/huge.jpg"
    with open(big, "wb") as fh:  # sparse: 20 GB that take no disk
        fh.truncate(20 * 10**9)
    hashed = []
    real_hash = sources.hash_file
    monkeypatch.setattr(sources, "hash_file", lambda p: hashed.append(p) or real_hash(p))
    s = b.build(config, engine=fake_engine)
    assert failures(s) == {"huge.jpg": ("read", "file-too-large")}
    assert s.failures[0].message.startswith("20.0 GB is over the 1.0 KB input limit")
    assert str(big) not in hashed and len(hashed) == 2
    assert sorted(manifest(tmp_path)) == ["a.jpg", "b.jpg"]


def test_dry_run_with_read_only_cache_counts_cached(tmp_path, fake_engine):
    """A CI cache restored on a read-only mount: SQLite cannot make the -shm file a WAL
    database is read through, so the state used to read as empty and every rendition
    counted as "to build". The dry run runs in a private mount namespace (unshare -m)."""
    config = site(tmp_path)
    b.build(config, engine=fake_engine)
    for leftover in (".cache/state.sqlite-shm", ".cache/state.sqlite-wal"):
        (tmp_path / leftover).unlink(missing_ok=True)
    before = snapshot(tmp_path / ".cache")
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from fake_engine import FakeEngine; from imgpipe import build as b; "
        "from pathlib import Path; from imgpipe.config import from_dict; "
        f"c = from_dict({{'source': 'images', 'output': 'public', 'cache_dir': '.cache', "
        f"'jobs': 2, 'rules': {RULES!r}}}, Path({str(tmp_path)!r})); "
        "items = b.dry_run(c, engine=FakeEngine()); "
        "print(len(items), sum(i.cached for i in items))"
    )
    cache = tmp_path / ".cache"
    result = in_mount_namespace(
        f"mount --bind {cache} {cache} && "
        f"mount -o remount,ro,bind {cache} && "
        f'{sys.executable} -c "{script}"'
    )
    assert result.stdout.split() == ["10", "10"], result.stderr
    assert snapshot(tmp_path / ".cache") == before


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def in_mount_namespace(command: str) -> subprocess.CompletedProcess:
    """Run a shell command in a private mount namespace (its mounts vanish with it); skip
    where mounting is impossible (not root, no CAP_SYS_ADMIN)."""
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.decode().strip()}")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=120
    )


def test_file_name_not_utf8_is_one_sources_error(tmp_path, fake_engine):
    """Such a name cannot be a manifest key or a URL: it used to end the build with a
    UnicodeEncodeError traceback."""
    config = site(tmp_path)
    with open(os.fsencode(tmp_path / "images") + b"/caf\xe9.jpg", "wb") as fh:
        fh.write(b"300x200\nLatin-1")
    s = b.build(config, engine=fake_engine)
    assert failures(s) == {"caf\\xe9.jpg": ("discover", "bad-file-name")}
    assert sorted(manifest(tmp_path)) == ["a.jpg", "b.jpg"]
