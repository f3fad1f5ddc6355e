"""State store, atomic writes and the build lock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest

from imgpipe.lock import BuildLocked, Lock
from imgpipe.model import SourceInfo
from imgpipe.state import Record, State, atomic_write, remove_temp_files


def test_state_survives_reopen(tmp_path):
    with State(tmp_path / "c") as st:
        st.remember_sha256("a.jpg", 1, 2, 3, 4, "sha")
        st.put_info("sha", SourceInfo(10, 20, "jpeg", 1))
        st.put_record(
            Record(
                "k" * 64,
                "webp",
                5,
                6,
                3,
                "medium",
                80,
                (("w", "m"),),
                hashlib.sha256(b"abc").hexdigest(),
            ),
            b"abc",
        )
        st.put_written("out/x", "k", 3, 99)
        st.commit()
    with State(tmp_path / "c") as st:
        assert st.known_sha256("a.jpg", 1, 2, 3, 4) == "sha"
        assert st.known_sha256("a.jpg", 1, 2, 999, 4) is None  # ctime moved: bytes may differ
        assert st.known_sha256("a.jpg", 1, 2, 3, 5) is None  # another inode (replaced file)
        assert st.info("sha") == SourceInfo(10, 20, "jpeg", 1)
        rec = st.record("k" * 64)
        assert rec.warnings == (("w", "m"),) and st.has_blob(rec)
        assert st.read_blob("k" * 64) == b"abc" and st.written("out/x").mtime_ns == 99


def test_record_without_its_exact_blob_is_not_usable(tmp_path):
    with State(tmp_path / "c") as st:
        rec = Record(
            "a" * 64, "webp", 5, 6, 3, "medium", 80, (), hashlib.sha256(b"abc").hexdigest()
        )
        st.put_record(rec, b"abc")
        assert st.has_blob(rec)
        with open(st.blob_path(rec.key), "wb") as fh:
            fh.write(b"ab\0")  # same size, other bytes: a torn write after a power cut
        assert not st.has_blob(rec)
        os.unlink(st.blob_path(rec.key))
        assert not st.has_blob(rec)


def test_readonly_state_creates_nothing(tmp_path):
    with State(tmp_path / "c", readonly=True) as st:
        st.remember_sha256("a", 1, 2, 3, 4, "s")
    assert not (tmp_path / "c").exists()


def test_atomic_write_leaves_old_or_new_and_no_temp(tmp_path):
    target = tmp_path / "d/x.bin"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path / "d") == ["x.bin"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_remove_temp_files_removes_only_ours(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a/.imgpipe-tmp-xyz").write_bytes(b"partial")
    (tmp_path / "a/keep.jpg").write_bytes(b"x")
    assert remove_temp_files(tmp_path) == 1 and os.listdir(tmp_path / "a") == ["keep.jpg"]


def test_lock_blocks_other_processes_until_released(tmp_path):
    lock = Lock(tmp_path)
    lock.acquire()
    code = (
        f"import sys; sys.path.insert(0, {os.getcwd()!r})\n"
        "from imgpipe.lock import Lock\n"
        f"Lock({str(tmp_path)!r}).acquire(on_wait=lambda pid: print('waiting', pid, "
        "flush=True)); print('got it', flush=True)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout.readline().split() == ["waiting", str(os.getpid())]
        time.sleep(0.2)
        assert child.poll() is None  # still waiting
        lock.release()
        assert child.stdout.readline() == "got it\n" and child.wait(10) == 0


def test_lock_no_wait_message(tmp_path):
    first = Lock(tmp_path)
    first.acquire()
    with pytest.raises(BuildLocked) as info:
        Lock(tmp_path).acquire(wait=False)
    assert str(info.value) == (
        f"another imgpipe build (pid {os.getpid()}) is using {tmp_path}; "
        "wait for it, or run without --no-wait to queue behind it"
    )
    first.release()
    second = Lock(tmp_path)
    second.acquire(wait=False)
    second.release()


def test_state_of_another_schema_is_dropped_not_trusted(tmp_path):
    with State(tmp_path / "c") as st:
        st.remember_sha256("a.jpg", 1, 2, 3, 4, "sha")
        st.commit()
        st.set_meta("schema", "0")
    with State(tmp_path / "c") as st:
        assert st.known_sha256("a.jpg", 1, 2, 3, 4) is None
        assert st.get_meta("schema") != "0"


def test_files_module_atomic_copy_keeps_mtime_and_leaves_no_temp_file(tmp_path, monkeypatch):
    """What the plugins publish is copied like everything else is written: whole or not at
    all, and under the temp prefix a later build sweeps."""
    from imgpipe import files

    source = tmp_path / "a.webp"
    source.write_bytes(b"x" * 100)
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))
    files.atomic_copy(source, tmp_path / "site/a.webp")
    copied = tmp_path / "site/a.webp"
    assert copied.read_bytes() == b"x" * 100 and copied.stat().st_mtime_ns == 1_000_000_000

    def refuse(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_copy(source, tmp_path / "site/b.webp")
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["a.webp"]
