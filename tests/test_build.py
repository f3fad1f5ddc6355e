"""The build orchestration on a real filesystem with the fake engine (fast)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imgpipe import build as b
from imgpipe.config import from_dict
from imgpipe.lock import BuildLocked, Lock

RULES = [
    {"include": ["**/*.jpg"], "renditions": {"thumb": "100x100,crop", "big": "400"}},
    {"include": ["blog/*.jpg"], "widths": [100, 200], "formats": ["webp", "jpeg"], "sizes": "50vw"},
]


def site(tmp_path: Path, rules=RULES, **extra) -> Path:
    src = tmp_path / "images"
    (src / "blog").mkdir(parents=True)
    (src / "a.jpg").write_text("300x200\nA")
    (src / "blog" / "cat.jpg").write_text("800x600\nC")
    (src / "blog" / "dog.jpg").write_text("640x480\nD")
    (src / "notes.txt").write_text("not matched")
    return tmp_path


def config(root: Path, rules=RULES, **extra):
    raw = {
        "source": "images",
        "output": "public/img",
        "base_url": "/img/",
        "cache_dir": ".cache",
        "jobs": 2,
        "rules": rules,
        **extra,
    }
    return from_dict(raw, root)


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `directory` with its mtime_ns and bytes."""
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_first_build_writes_outputs_manifest_and_snippets(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    s = b.build(cfg, engine=fake_engine)
    assert (s.sources, s.built, s.cached, s.failed) == (3, 14, 0, 0)
    out = tmp_path / "public/img"
    man = json.loads((out / "imgpipe-manifest.json").read_text())
    assert man["version"] == 1 and sorted(man["sources"]) == [
        "a.jpg",
        "blog/cat.jpg",
        "blog/dog.jpg",
    ]
    cat = man["sources"]["blog/cat.jpg"]
    assert sorted(cat["renditions"]) == [
        "100-jpeg",
        "100-webp",
        "200-jpeg",
        "200-webp",
        "big",
        "thumb",
    ]
    thumb = cat["renditions"]["thumb"]
    assert thumb["path"].startswith("blog/cat-thumb.") and thumb["path"].endswith(".jpg")
    assert thumb["url"] == "/img/" + thumb["path"] and (out / thumb["path"]).is_file()
    assert (thumb["width"], thumb["height"], thumb["mime"]) == (100, 100, "image/jpeg")
    group = cat["srcsets"]["default"]
    assert group["fallback"] == "jpeg" and group["order"] == ["webp", "jpeg"]
    assert [i["width"] for i in group["formats"]["webp"]] == [100, 200]
    assert (group["width"], group["height"], group["sizes"]) == (200, 150, "50vw")
    snippet = (out / "_snippets/blog/cat.jpg.default.html").read_text()
    assert '<source type="image/webp"' in snippet and 'width="200" height="150"' in snippet
    assert not (out / "_snippets/a.jpg.default.html").exists()  # a.jpg has no family


def test_second_build_encodes_nothing_and_writes_nothing(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    before, renders = snapshot(tmp_path / "public"), fake_engine.renders
    s = b.build(cfg, engine=fake_engine)
    assert fake_engine.renders == renders and fake_engine.opens == 3
    assert (s.built, s.cached, s.files_written, s.files_removed) == (0, 14, 0, 0)
    assert snapshot(tmp_path / "public") == before


def test_touch_without_changing_bytes_rebuilds_nothing(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    cat = tmp_path / "images/blog/cat.jpg"
    os.utime(cat, ns=(cat.stat().st_atime_ns, cat.stat().st_mtime_ns + 5_000_000_000))
    before = snapshot(tmp_path / "public")
    s = b.build(cfg, engine=fake_engine)
    assert s.built == 0 and s.files_written == 0
    assert snapshot(tmp_path / "public") == before


def test_changed_bytes_with_size_and_mtime_restored_are_noticed(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    cat = tmp_path / "images/blog/cat.jpg"
    st = cat.stat()
    cat.write_text("800x600\nX")  # same size
    os.utime(cat, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (cat.stat().st_size, cat.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    renders = fake_engine.renders
    s = b.build(cfg, engine=fake_engine)
    assert fake_engine.renders - renders == 6 and s.built == 6 and s.cached == 8


def test_changing_one_rule_rebuilds_exactly_its_renditions(tmp_path, fake_engine):
    root = site(tmp_path)
    b.build(config(root), engine=fake_engine)
    changed = [dict(RULES[0]), RULES[1]]
    changed[0]["renditions"] = {"thumb": "100x100,crop", "big": "400,quality=high"}
    renders = fake_engine.renders
    s = b.build(config(root, rules=changed), engine=fake_engine)
    assert fake_engine.renders - renders == 3  # `big` of each of the three sources
    assert (s.built, s.cached, s.files_removed) == (3, 11, 3)  # old `big` files are gone


def test_sizes_attribute_change_rebuilds_no_image(tmp_path, fake_engine):
    root = site(tmp_path)
    b.build(config(root), engine=fake_engine)
    changed = [RULES[0], {**RULES[1], "sizes": "100vw"}]
    renders = fake_engine.renders
    s = b.build(config(root, rules=changed), engine=fake_engine)
    assert fake_engine.renders == renders and s.built == 0
    snippet = (root / "public/img/_snippets/blog/cat.jpg.default.html").read_text()
    assert 'sizes="100vw"' in snippet


def test_bad_source_is_reported_and_the_rest_is_built(tmp_path, fake_engine):
    root = site(tmp_path)
    (root / "images/blog/bad.jpg").write_text("garbage")
    s = b.build(config(root), engine=fake_engine)
    assert not s.ok and s.failed == 6 and s.built == 14
    (failure,) = s.failures
    assert (failure.source, failure.stage, failure.code) == ("blog/bad.jpg", "load", "unreadable")
    assert "not an image" in failure.message
    out = root / "public/img"
    assert not list(out.rglob("bad*"))
    assert "blog/bad.jpg" not in json.loads((out / "imgpipe-manifest.json").read_text())["sources"]


def test_a_source_whose_every_rendition_fails_at_decode_is_one_failure(
    tmp_path, fake_engine, monkeypatch
):
    """A truncated file opens, then fails every rendition at decode; libvips' own words in
    the message may differ between two decodes of it (the executor renders in two passes).
    Still one failure for the source, and no manifest entry."""
    from fake_engine import _FakeSource

    from imgpipe.errors import image_error

    real = _FakeSource.render_all

    def render_all(self, recipes):
        if not self.data.endswith(b"T"):
            return real(self, recipes)
        return [
            image_error("truncated", f"the JPEG data ends early ({r.width})", "decode")
            for r in recipes
        ]

    monkeypatch.setattr(_FakeSource, "render_all", render_all)
    root = site(tmp_path)
    (root / "images/blog/cut.jpg").write_text("800x600\nT")
    s = b.build(config(root), engine=fake_engine)
    (failure,) = s.failures
    assert (failure.source, failure.label, failure.code) == ("blog/cut.jpg", None, "truncated")
    manifest = json.loads((root / "public/img/imgpipe-manifest.json").read_text())
    assert "blog/cut.jpg" not in manifest["sources"] and s.built == 14


def test_two_clean_builds_give_identical_manifests(tmp_path, fake_engine):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir(), second.mkdir()
    b.build(config(site(first)), engine=fake_engine)
    b.build(config(site(second)), engine=fake_engine)
    name = "public/img/imgpipe-manifest.json"
    assert (first / name).read_bytes() == (second / name).read_bytes()
    assert snapshot(first / "public").keys() == snapshot(second / "public").keys()


def test_output_is_refilled_from_the_cache_without_encoding(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    before = {k: v[1] for k, v in snapshot(tmp_path / "public").items()}
    import shutil

    shutil.rmtree(tmp_path / "public")
    renders = fake_engine.renders
    s = b.build(cfg, engine=fake_engine)
    assert fake_engine.renders == renders and s.cached == 14
    assert {k: v[1] for k, v in snapshot(tmp_path / "public").items()} == before


def test_removed_source_outputs_are_collected_unless_no_gc(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    (tmp_path / "images/blog/dog.jpg").unlink()
    s = b.build(cfg, engine=fake_engine, gc=False)
    assert s.files_removed == 0 and list((tmp_path / "public/img/blog").glob("dog-*"))
    s = b.build(cfg, engine=fake_engine)
    assert s.files_removed == 7  # 6 renditions and the snippet
    assert not list((tmp_path / "public/img/blog").rglob("dog*"))


def test_gc_leaves_files_imgpipe_did_not_write(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    mine = tmp_path / "public/img/blog/cat-hand-made.jpg"
    mine.write_text("x")
    (tmp_path / "images/blog/cat.jpg").unlink()
    b.build(cfg, engine=fake_engine)
    assert mine.exists()


def test_force_rebuilds_everything(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    before = snapshot(tmp_path / "public")
    s = b.build(cfg, engine=fake_engine, force=True)
    assert s.built == 14 and fake_engine.renders == 28
    assert snapshot(tmp_path / "public") == before  # same bytes: nothing rewritten


def test_dry_run_writes_nothing(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    items = b.dry_run(cfg, engine=fake_engine)
    assert not (tmp_path / ".cache").exists() and not (tmp_path / "public").exists()
    assert len(items) == 14 and not any(i.cached for i in items)
    thumb = next(i for i in items if i.source == "a.jpg" and i.label == "thumb")
    assert thumb.options == "100x100,crop" and thumb.output is None  # format auto: unknown
    webp = next(i for i in items if i.label == "100-webp")
    assert webp.output == f"blog/cat-100-webp.{webp.key[:8]}.webp"
    assert thumb.size is None  # no header read yet
    b.build(cfg, engine=fake_engine)
    items = b.dry_run(cfg, engine=fake_engine)
    assert all(i.cached and i.output for i in items)
    assert {(i.label, i.size) for i in items if i.source == "blog/cat.jpg"} >= {
        ("thumb", (100, 100)),
        ("big", (400, 300)),
        ("100-webp", (100, 75)),
    }


def test_locked_cache_dir_refuses_with_no_wait(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    held = Lock(cfg.cache_dir)
    held.acquire()
    try:
        with pytest.raises(BuildLocked, match=r"another imgpipe build \(pid \d+\) is using"):
            b.build(cfg, engine=fake_engine, wait=False)
    finally:
        held.release()
    assert b.build(cfg, engine=fake_engine, wait=False).ok


def test_user_template_overrides_snippets(tmp_path, fake_engine):
    root = site(tmp_path)
    (root / "tpl").mkdir()
    (root / "tpl/picture.html").write_text('<img src="{{ group.src }}" alt="{{ alt }}">')
    b.build(config(root, templates="tpl"), engine=fake_engine)
    text = (root / "public/img/_snippets/blog/dog.jpg.default.html").read_text()
    assert text.startswith('<img src="/img/blog/dog-200-jpeg.')


def test_engine_upgrade_rebuilds_everything(tmp_path, fake_engine):
    from conftest import FakeEngine

    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    upgraded = FakeEngine({"libvips": "0.0.1"})
    s = b.build(cfg, engine=upgraded)
    assert upgraded.renders == 14 and s.built == 14 and s.files_removed == 14


def test_no_op_fast_path_still_sees_template_and_config_changes(tmp_path, fake_engine):
    root = site(tmp_path)
    (root / "tpl").mkdir()
    template = root / "tpl/picture.html"
    template.write_text('<img src="{{ group.src }}">')
    b.build(config(root, templates="tpl"), engine=fake_engine)
    assert b.build(config(root, templates="tpl"), engine=fake_engine).files_written == 0
    template.write_text('<img class="x" src="{{ group.src }}">')
    s = b.build(config(root, templates="tpl"), engine=fake_engine)
    assert s.files_written == 2  # the two snippets, nothing else
    s = b.build(config(root, templates="tpl", base_url="https://cdn.example/"), engine=fake_engine)
    assert s.files_written == 3 and s.built == 0  # manifest and snippets: new URLs
    snippet = (root / "public/img/_snippets/blog/cat.jpg.default.html").read_text()
    assert snippet.startswith('<img class="x" src="https://cdn.example/blog/cat-200-jpeg.')


def test_no_op_fast_path_restores_a_deleted_or_edited_output(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    man = json.loads((tmp_path / "public/img/imgpipe-manifest.json").read_text())
    thumb = tmp_path / "public/img" / man["sources"]["a.jpg"]["renditions"]["thumb"]["path"]
    good = thumb.read_bytes()
    thumb.write_bytes(b"vandalised")
    s = b.build(cfg, engine=fake_engine)
    assert thumb.read_bytes() == good and s.files_written == 1 and s.built == 0
    thumb.unlink()
    s = b.build(cfg, engine=fake_engine)
    assert thumb.read_bytes() == good and s.files_written == 1


def test_summary_and_report_carry_the_same_figures_failures_and_warnings():
    from imgpipe import report

    s = b.Summary(
        sources=3,
        built=5,
        cached=2,
        failed=2,
        bytes_before=2_500_000,
        bytes_after=400_000,
        bytes_served=300_000,
        seconds=1.234,
        files_written=6,
        files_removed=1,
        failures=(b.Issue("load", "truncated", "ends early", source="x.jpg"),),
        warnings=(
            b.Issue("config", "unknown-key", "k"),
            b.Issue("render", "lossless-resized", "m", "big", "a.jpg"),
        ),
    )
    assert report.summary_lines(s) == [
        "error[truncated]: x.jpg: load: ends early",
        "warning[lossless-resized]: a.jpg [big]: m",
        "3 sources; renditions: 5 built, 2 cached, 2 failed; browsers download 300.0 KB, 88% "
        "less than the originals' 2.5 MB (all renditions: 400.0 KB); 1.23 s",
    ]
    data = report.report_data(s)
    assert data["renditions"] == {"built": 5, "cached": 2, "failed": 2} and not data["ok"]
    assert data["bytes"] == {"before": 2_500_000, "after": 400_000, "served": 300_000}
    assert data["failures"] == [
        {
            "source": "x.jpg",
            "label": None,
            "stage": "load",
            "code": "truncated",
            "message": "ends early",
        }
    ]
    assert [w["code"] for w in data["warnings"]] == ["unknown-key", "lossless-resized"]


def test_warnings_and_failures_are_one_issue_type(tmp_path, fake_engine):
    """The executor's failure is the report's Issue: the build only fills in where."""
    from dataclasses import replace

    from imgpipe.executor import run_job
    from imgpipe.model import Issue, Job, Limits

    result = run_job(
        Job("gone.jpg", str(tmp_path / "gone.jpg"), "0" * 64, (), Limits()), fake_engine
    )
    assert isinstance(result.failure, Issue)
    assert (result.failure.stage, result.failure.code) == ("read", "unreadable")
    assert replace(result.failure, source="gone.jpg").source == "gone.jpg"
