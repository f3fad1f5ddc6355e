"""The watcher on a real filesystem with the real watchdog observer and the real engine."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("pyvips")

from watch_support import (  # noqa: E402
    clean_build,
    close,
    color,
    jpeg,
    make_site,
    output_of,
    pixel,
    rendition,
    temp_files,
)

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.watch import Round, Watcher  # noqa: E402


class Site:
    """A site under watch: change files, then `settle()` until the watcher is idle again."""

    def __init__(self, root: Path, watcher: Watcher):
        self.root, self.watcher = root, watcher
        self.images = root / "images"
        self.mark = 0  # rounds already looked at

    def settle(self, timeout: float = 60) -> list[Round]:
        """The rounds that ran since the last settle (at least one must)."""
        before = self.mark
        last = self.watcher.wait_idle(before + 1, timeout)
        self.mark = last.number + 1
        return self.watcher.rounds[before:]

    def matches_clean_build(self, scratch: Path) -> None:
        assert output_of(self.root) == clean_build(self.root, scratch)
        assert not temp_files(self.root)


def watch(root: Path, **options) -> Watcher:
    # The real defaults for timing: shorter ones make rounds split on a busy CI machine.
    defaults = {"debounce": 0.2, "settle": 0.2, "max_wait": 3.0, "rescan": 30.0, "jobs": 2}
    return Watcher(root / "imgpipe.toml", **{**defaults, **options})


@pytest.fixture
def site(tmp_path):
    root = make_site(tmp_path / "site")
    watcher = watch(root)
    watcher.start()
    s = Site(root, watcher)
    s.settle()  # the initial build
    yield s
    watcher.stop()
    assert not watcher._thread.is_alive()


def _create(images: Path) -> None:
    (images / "new.jpg").write_bytes(jpeg(color(9)))


def _modify(images: Path) -> None:
    (images / "a.jpg").write_bytes(jpeg(color(9)))


def _delete(images: Path) -> None:
    (images / "b.jpg").unlink()


def _rename_file(images: Path) -> None:
    os.rename(images / "a.jpg", images / "renamed.jpg")


def _rename_folder(images: Path) -> None:
    os.rename(images / "sub", images / "moved")


def _save_via_temp_and_rename(images: Path) -> None:  # vim (backupcopy=no), most GUI apps
    tmp = images / ".a.jpg.tmp"
    tmp.write_bytes(jpeg(color(9)))
    os.replace(tmp, images / "a.jpg")


def _truncate_and_write_in_chunks(images: Path) -> None:
    data = jpeg(color(9))
    with open(images / "a.jpg", "wb") as fh:  # O_TRUNC, then the bytes arrive in pieces
        for i in range(0, len(data), 200):
            fh.write(data[i : i + 200])
            fh.flush()
            time.sleep(0.002)


def _delete_then_create(images: Path) -> None:
    (images / "a.jpg").unlink()
    time.sleep(0.03)
    (images / "a.jpg").write_bytes(jpeg(color(9)))


@pytest.mark.parametrize(
    "change",
    [
        _create,
        _modify,
        _delete,
        _rename_file,
        _rename_folder,
        _save_via_temp_and_rename,
        _truncate_and_write_in_chunks,
        _delete_then_create,
    ],
)
def test_each_change_ends_equal_to_a_clean_build(site, tmp_path, change):
    change(site.images)
    rounds = site.settle()
    assert all(r.error is None and r.summary.ok for r in rounds)
    site.matches_clean_build(tmp_path / "clean")


def test_a_round_renders_only_the_changed_source_and_rewrites_only_changed_files(site):
    manifest = site.root / "public/img/imgpipe-manifest.json"
    snippet_b = site.root / "public/img/_snippets/b.jpg.default.html"
    before = manifest.stat().st_mtime_ns, snippet_b.stat().st_mtime_ns
    _modify(site.images)
    (r,) = site.settle()
    assert (r.summary.built, r.summary.cached) == (2, 4)  # a.jpg's two widths, nothing else
    assert r.changed == ("a.jpg",) and r.engine_seconds > 0
    assert manifest.stat().st_mtime_ns != before[0]  # a.jpg's entry changed
    assert snippet_b.stat().st_mtime_ns == before[1]  # b.jpg's snippet did not

    # Touching a file (new mtime, same bytes) makes a round that writes nothing at all.
    mtime = manifest.stat().st_mtime_ns
    os.utime(site.images / "b.jpg")
    (r,) = site.settle()
    assert (r.summary.built, r.summary.files_written, r.summary.files_removed) == (0, 0, 0)
    assert manifest.stat().st_mtime_ns == mtime


def test_two_hundred_files_dropped_at_once_take_at_most_two_rounds(site, tmp_path):
    blobs = [jpeg(color(i), 40, 30) for i in range(200)]  # encoded first: the drop is quick
    drop = site.images / "drop"
    drop.mkdir()
    for i, data in enumerate(blobs):
        (drop / f"p{i:03}.jpg").write_bytes(data)
    rounds = site.settle(timeout=120)
    assert 1 <= len(rounds) <= 2, [(r.reasons, len(r.changed)) for r in rounds]
    assert sum(r.summary.built for r in rounds) == 400
    manifest, _files = output_of(site.root)
    assert len(manifest["sources"]) == 203
    site.matches_clean_build(tmp_path / "clean")


def test_a_file_overwritten_twenty_times_ends_with_the_last_content(site):
    blobs = [jpeg(color(100 + i)) for i in range(20)]
    for data in blobs:
        (site.images / "a.jpg").write_bytes(data)
        time.sleep(0.01)
    rounds = site.settle()
    assert len(rounds) <= 2, [r.changed for r in rounds]  # the burst is coalesced
    assert close(pixel(rendition(site.root, "a.jpg")), color(119))


def test_a_file_replaced_under_the_same_name_and_size_is_not_served_stale(site):
    """libvips caches decodes by file name: the engine must read the new bytes."""
    path = site.images / "a.jpg"
    old = path.stat()
    assert close(pixel(rendition(site.root, "a.jpg")), color(0))
    # Same dimensions and the same byte length: only the pixels differ.
    i, new = next((i, data) for i in range(40, 250) if len(data := jpeg(color(i))) == old.st_size)
    with open(path, "r+b") as fh:  # in place: same inode
        fh.write(new)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # and the old mtime back
    site.settle()
    assert close(pixel(rendition(site.root, "a.jpg")), color(i))


def test_a_file_still_being_written_is_built_once_complete(tmp_path):
    root = make_site(tmp_path / "site")
    # settle > pause > debounce: the pause ends the burst, the young mtime holds the round.
    # settle is far above the pause, so that a busy machine stretching the 0.3 s pause does
    # not make the half-written file look finished (0.8 s was within reach of a stall).
    with watch(root, debounce=0.1, settle=5.0) as watcher:
        watcher.wait_idle(1)
        data = jpeg(color(77), 300, 200)
        with open(root / "images/slow.jpg", "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(0.3)
            fh.write(data[len(data) // 2 :])
        last = watcher.wait_idle(2)
    rounds = watcher.rounds[1:]
    assert all(r.summary.ok for r in rounds), [r.summary.failures for r in rounds]
    assert last.summary.sources == 4
    assert close(pixel(rendition(root, "slow.jpg")), color(77))


def test_an_invalid_config_is_reported_and_a_fix_is_applied(site):
    config = site.root / "imgpipe.toml"
    good = config.read_text()
    config.write_text(good.replace("widths = [32, 48]", 'widths = [32, "wide"]'))
    (r,) = site.settle()
    assert r.error == "config" and r.summary is None
    assert site.watcher._thread.is_alive()
    # A source edit while the config is broken is built with the last good config.
    _modify(site.images)
    (r,) = site.settle()
    assert r.summary.built == 2
    config.write_text(good.replace("widths = [32, 48]", "widths = [24]"))
    (r,) = site.settle()
    assert r.error is None and r.summary.ok
    manifest, files = output_of(site.root)
    assert sorted(manifest["sources"]["a.jpg"]["renditions"]) == ["24-jpeg"]
    assert not any("-32-jpeg." in f or "-48-jpeg." in f for f in files)


def test_a_bad_image_is_reported_and_the_watcher_keeps_going(site, tmp_path):
    lines: list[str] = []
    site.watcher.log_line = lines.append
    (site.images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (r,) = site.settle()
    assert [f.source for f in r.summary.failures] == ["broken.jpg"]
    assert any(line.startswith("error[") and "broken.jpg" in line for line in lines)
    (site.images / "broken.jpg").write_bytes(jpeg(color(5)))
    (r,) = site.settle()
    assert r.summary.ok
    site.matches_clean_build(tmp_path / "clean")


def test_an_exception_in_a_round_or_callback_does_not_stop_the_watcher(tmp_path):
    root = make_site(tmp_path / "site")
    calls = []

    def on_round(r: Round) -> None:
        calls.append(r.number)
        raise RuntimeError("callback bug")

    manifest = root / "public/img/imgpipe-manifest.json"
    with watch(root, on_round=on_round, log_line=lambda _line: None) as watcher:
        watcher.wait_idle(1)
        # A directory where the manifest goes makes the build itself raise (IsADirectoryError).
        manifest.unlink()
        manifest.mkdir()
        _modify(root / "images")
        r = watcher.wait_idle(2)
        assert r.error == "exception" and r.summary is None
        manifest.rmdir()
        _delete(root / "images")
        r = watcher.wait_idle(3)
        assert r.error is None and r.summary.ok and watcher._thread.is_alive()
    assert calls == [0, 1, 2] and manifest.is_file() and not temp_files(root)


def test_a_lost_event_is_caught_by_the_rescan(tmp_path):
    # A symlinked source edited through its target makes no event for the source: the same
    # situation as an inotify queue overflow, for real. (The target is in a hidden directory
    # of the source tree, which the watcher ignores: links out of the tree are not followed.)
    root = make_site(tmp_path / "site")
    elsewhere = root / "images/.store/elsewhere.jpg"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(jpeg(color(1)))
    os.symlink(elsewhere, root / "images/linked.jpg")
    with watch(root, rescan=0.5) as watcher:
        watcher.wait_idle(1)
        assert close(pixel(rendition(root, "linked.jpg")), color(1))
        elsewhere.write_bytes(jpeg(color(60)))
        r = watcher.wait_idle(2, timeout=30)
    assert r.reasons == ("rescan",) and r.changed == ("linked.jpg",)
    assert close(pixel(rendition(root, "linked.jpg")), color(60))


def test_stop_during_a_round_leaves_whole_files_and_no_lock(tmp_path):
    from imgpipe.lock import Lock

    root = make_site(tmp_path / "site")
    watcher = watch(root)
    watcher.start()
    watcher.wait_idle(1)
    for i in range(60):
        (root / f"images/n{i}.jpg").write_bytes(jpeg(color(i + 3), 1600, 1200))
    deadline = time.monotonic() + 60
    while not list((root / "public/img").glob("n*")):  # the round is under way
        assert time.monotonic() < deadline
        time.sleep(0.002)
    watcher.stop(timeout=60)
    assert not watcher._thread.is_alive() and not temp_files(root)
    assert watcher.rounds[-1].error == "stopped"
    lock = Lock(root / ".cache")
    lock.acquire(wait=False)  # nobody holds it
    lock.release()
    # The manifest is still the last complete one, naming only files that exist.
    manifest, files = output_of(root)
    assert sorted(manifest["sources"]) == ["a.jpg", "b.jpg", "sub/c.jpg"]
    assert all(
        r["path"] in files for e in manifest["sources"].values() for r in e["renditions"].values()
    )
    # The next build finishes the job and agrees with a clean one.
    assert build(load(root / "imgpipe.toml")).ok
    assert output_of(root) == clean_build(root, tmp_path / "clean")


def test_a_round_that_finds_another_build_running_retries_after_it(site):
    from imgpipe.lock import Lock

    lock = Lock(site.root / ".cache")
    lock.acquire()  # as a separate `imgpipe build` would
    try:
        _modify(site.images)
        deadline = time.monotonic() + 30
        while not any(r.error == "locked" for r in site.watcher.rounds):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        lock.release()
    rounds = site.settle()
    assert rounds[-1].reasons == ("change", "retry") and rounds[-1].summary.built == 2


def test_a_config_that_moves_the_source_dir_moves_the_watch(site, tmp_path):
    shutil.copytree(site.images, site.root / "photos")
    config = site.root / "imgpipe.toml"
    config.write_text(config.read_text().replace('source = "images"', 'source = "photos"'))
    (r,) = site.settle()
    assert r.reasons == ("config",) and r.summary.ok
    shutil.rmtree(site.images)
    (site.root / "photos/b.jpg").unlink()  # the new source dir is watched
    (r,) = site.settle()
    assert r.changed == ("b.jpg",)
    manifest, _files = output_of(site.root)
    assert sorted(manifest["sources"]) == ["a.jpg", "sub/c.jpg"]


def test_a_template_edit_rewrites_the_snippets(tmp_path):
    root = make_site(tmp_path / "site")
    (root / "tpl").mkdir()
    (root / "tpl/picture.html").write_text("one {{ sizes }}")
    config = root / "imgpipe.toml"
    config.write_text('templates = "tpl"\n' + config.read_text())
    snippet = root / "public/img/_snippets/a.jpg.default.html"
    with watch(root) as watcher:
        watcher.wait_idle(1)
        assert snippet.read_text().startswith("one 50vw")
        (root / "tpl/picture.html").write_text("two {{ sizes }}")
        r = watcher.wait_idle(2)
    assert r.reasons == ("templates",) and r.summary.files_written == 3  # the three snippets
    assert snippet.read_text().startswith("two 50vw")


def test_a_missing_source_dir_is_reported_and_watched_for_once_it_exists(tmp_path):
    root = make_site(tmp_path / "site")
    os.rename(root / "images", root / "later")
    lines: list[str] = []
    with watch(root, rescan=0.3, log_line=lines.append) as watcher:
        r = watcher.wait_idle(1)
        assert r.error == "config" and any("missing-source" in line for line in lines)
        time.sleep(1)  # rescans find nothing new: no rounds, no repeated errors
        assert watcher.round_count == 1
        os.rename(root / "later", root / "images")
        r = watcher.wait_idle(2)
        assert r.summary.ok and r.summary.sources == 3
        (root / "images/b.jpg").unlink()  # and it is watched now
        r = watcher.wait_idle(3)
        assert r.changed == ("b.jpg",)


def test_a_source_dir_deleted_and_made_again_is_watched_again(site, tmp_path):
    shutil.copytree(site.images, tmp_path / "backup")
    shutil.rmtree(site.images)
    r = site.settle()[-1]
    assert r.error == "config"  # missing-source, reported; the watcher goes on
    shutil.copytree(tmp_path / "backup", site.images)
    assert site.settle()[-1].summary.sources == 3
    # Replaced within one round's quiet period (a git checkout does this): same path, new
    # directory, and the old watch died with the old one.
    shutil.rmtree(site.images)
    shutil.copytree(tmp_path / "backup", site.images)
    site.settle()
    (site.images / "b.jpg").unlink()
    r = site.settle()[-1]
    assert r.changed == ("b.jpg",) and r.reasons == ("change",)
    site.matches_clean_build(tmp_path / "clean")


SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
    '<rect width="{w}" height="{h}" fill="#336699"/><circle cx="8" cy="8" r="6"/></svg>'
)
SVG_CONFIG = """
source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"
jobs = 2

[[rules]]
include = ["art/*.svg"]
rasterize_svg = true
widths = [32]
formats = ["png", "webp"]

[[rules]]
include = ["icons/*.svg"]
renditions = { icon = "full" }
"""


def test_watch_renders_svg_like_build(tmp_path):
    """Watch's timing wrapper once dropped `svg_mode`: every SVG failed under watch while
    `imgpipe build` rendered it. Drawn and copied SVGs, at start and added while watching."""
    images = tmp_path / "site" / "images"
    (images / "icons").mkdir(parents=True)
    (images / "art").mkdir()
    root = make_site(tmp_path / "site", names=(), config=SVG_CONFIG)
    (images / "art" / "logo.svg").write_text(SVG.format(w=64, h=32))
    (images / "icons" / "home.svg").write_text(SVG.format(w=24, h=24))
    watcher = watch(root)
    watcher.start()
    try:
        site = Site(root, watcher)
        (initial,) = site.settle()
        assert initial.summary.ok, initial.summary.failures
        (images / "art" / "wide.svg").write_text(SVG.format(w=96, h=24))
        (images / "icons" / "gear.svg").write_text(SVG.format(w=16, h=16))
        rounds = site.settle()
        assert all(r.summary.ok for r in rounds), [r.summary.failures for r in rounds]
    finally:
        watcher.stop()
    manifest, files = output_of(root)
    assert sorted(manifest["sources"]) == [
        "art/logo.svg",
        "art/wide.svg",
        "icons/gear.svg",
        "icons/home.svg",
    ]
    assert manifest["sources"]["icons/home.svg"]["renditions"]["svg"]["format"] == "svg"
    assert manifest["sources"]["art/logo.svg"]["renditions"]["32-png"]["width"] == 32
    assert (manifest, files) == clean_build(root, tmp_path / "clean")
    for name in files:  # the very bytes, not only the names and sizes
        assert (root / "public/img" / name).read_bytes() == (
            tmp_path / "clean/public/img" / name
        ).read_bytes(), name
