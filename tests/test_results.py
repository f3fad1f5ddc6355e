"""One shape per concept (issue 11 item 3): a rendition is one `Record` from render to
manifest, its warnings one `Issue` from engine to report, and what a build returns is made in
imgpipe/results.py (fake engine: fast)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from fake_engine import _FakeSource
from test_build import config, site

from imgpipe import build as b
from imgpipe import manifest as mf
from imgpipe import results
from imgpipe.errors import Problem
from imgpipe.model import Issue, Record, record_of
from imgpipe.options import parse
from imgpipe.state import State, scope_of


def _manifest(root):
    return json.loads((root / "public/img/imgpipe-manifest.json").read_text())["sources"]


@pytest.fixture
def warning_engine(fake_engine, monkeypatch):
    """The fake engine, with a warning on every rendition wider than 150 px (as the real
    engine warns of a resized lossless source)."""
    render_all = _FakeSource.render_all

    def noisy(self, recipes):
        return [
            dataclasses.replace(r, warnings=(Problem("wide", f"{r.width} px wide"),))
            if r.width > 150
            else r
            for r in render_all(self, recipes)
        ]

    monkeypatch.setattr(_FakeSource, "render_all", noisy)
    return fake_engine


def test_rendition_is_one_type_from_render_to_manifest(tmp_path, fake_engine):
    cfg = config(site(tmp_path))
    b.build(cfg, engine=fake_engine)
    assert dataclasses.is_dataclass(Record) and Record.__dataclass_params__.frozen
    entries = _manifest(tmp_path)
    with State(cfg.cache_dir, readonly=True, scope=scope_of(cfg)) as state:
        plan = b.plan_sources(cfg, state, b.fingerprint_of(fake_engine, state))
        checked = 0
        for sp in plan.sources:
            handle = fake_engine.open_source(sp.source.path, cfg.limits)
            for planned in sp.renditions:
                record = state.record(planned.key)
                # What the state keeps is what `record_of` makes of the engine's rendition...
                assert record == record_of(planned.key, handle.render(parse(planned.options)))
                # ...and the manifest's entry is the one built from that record.
                assert entries[sp.source.relpath]["renditions"][planned.label] == (
                    mf.rendition_entry(sp, planned, record, cfg.base_url)
                )
                checked += 1
    assert checked == 14


def test_rendition_warnings_reach_the_report_as_issues(tmp_path, warning_engine, monkeypatch):
    from imgpipe import report

    cfg = config(site(tmp_path))
    first = b.build(cfg, engine=warning_engine)
    manifest = _manifest(tmp_path)
    from_manifest = [
        Issue("render", w["code"], w["message"], w["label"], rel)
        for rel, entry in sorted(manifest.items())
        for w in entry["warnings"]
    ]
    assert len(from_manifest) == 7  # big of each source; 200-webp, 200-jpeg of blog/*
    assert [w for w in first.warnings if w.stage == "render"] == from_manifest
    assert all(isinstance(w, Issue) for w in first.warnings)
    assert report.report_data(first)["warnings"] == [dataclasses.asdict(w) for w in from_manifest]

    # The summary takes them from the records where each source is finished, not back from
    # the manifest's JSON: a manifest entry without warnings does not lose them.
    source_entry = mf.source_entry
    monkeypatch.setattr(mf, "source_entry", lambda *a: {**source_entry(*a), "warnings": []})
    (tmp_path / "images/new.jpg").write_text("120x80\nN")  # the others come from the cache
    second = b.build(cfg, engine=warning_engine)
    assert second.cached == 14 and second.built == 2
    assert [w for w in second.warnings if w.stage == "render"] == from_manifest


def test_what_a_build_returns_is_made_in_results(tmp_path, warning_engine):
    cfg = config(site(tmp_path))
    first = b.build(cfg, engine=warning_engine)
    assert not hasattr(b, "_summary") and not hasattr(b, "_replay")
    with State(cfg.cache_dir, readonly=True, scope=scope_of(cfg)) as state:
        saved = state.get_meta("summary")
    replayed = results.replay(saved, time.monotonic())
    second = b.build(cfg, engine=warning_engine)  # the no-op fast path replays the summary
    assert dataclasses.replace(second, seconds=0) == dataclasses.replace(replayed, seconds=0)
    assert (second.built, second.cached, second.warnings) == (0, 14, first.warnings)
    assert (second.bytes_before, second.bytes_after) == (first.bytes_before, first.bytes_after)
