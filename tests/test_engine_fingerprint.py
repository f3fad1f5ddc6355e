"""The engine's part of every cache key is remembered under its cheap identity, so a no-op
build never asks `versions()` (which loads libvips) and keys never depend on the memo."""

from __future__ import annotations

from pathlib import Path

from fake_engine import FakeEngine

from imgpipe import build as b
from imgpipe.config import Config, from_dict


class IdentifiedEngine(FakeEngine):
    """A fake whose versions are pinned by package metadata, as with pyvips-binary."""

    def __init__(self, identity: str, libvips: str):
        super().__init__({"libvips": libvips})
        self._identity = {"pyvips-binary": identity}
        self.version_calls = 0

    def versions(self) -> dict[str, str]:
        self.version_calls += 1
        return super().versions()

    def identity(self) -> dict[str, str] | None:
        return dict(self._identity)


def _config(tmp_path: Path) -> Config:
    (tmp_path / "images").mkdir()
    for name, size in (("a.jpg", "300x200"), ("b.jpg", "640x480")):
        (tmp_path / "images" / name).write_text(f"{size}\n{name}")
    rules = [{"include": ["*.jpg"], "widths": [100, 200], "formats": ["jpeg"]}]
    return from_dict(
        {"source": "images", "output": "public", "cache_dir": ".cache", "rules": rules}, tmp_path
    )


def test_noop_build_asks_an_identified_engine_no_versions(tmp_path):
    cfg = _config(tmp_path)
    b.build(cfg, engine=IdentifiedEngine("1", "8.0.0"))
    again = IdentifiedEngine("1", "8.0.0")
    s = b.build(cfg, engine=again)
    assert again.version_calls == 0 and s.built == 0 and s.cached == 4
    assert b.dry_run(cfg, engine=again)[0].cached and again.version_calls == 0


def test_a_new_identity_asks_versions_again_and_rebuilds_what_they_change(tmp_path):
    cfg = _config(tmp_path)
    b.build(cfg, engine=IdentifiedEngine("1", "8.0.0"))
    upgraded = IdentifiedEngine("2", "8.1.0")
    s = b.build(cfg, engine=upgraded)
    assert upgraded.version_calls == 1 and s.built == 4
    same = IdentifiedEngine("2", "8.1.0")
    assert b.build(cfg, engine=same).built == 0 and same.version_calls == 0


def test_the_memo_never_changes_a_cache_key(tmp_path):
    cfg = _config(tmp_path)
    b.build(cfg, engine=FakeEngine({"libvips": "8.0.0"}))  # no identity: versions() each time
    identified = IdentifiedEngine("1", "8.0.0")
    assert b.build(cfg, engine=identified).built == 0 and identified.version_calls == 1
