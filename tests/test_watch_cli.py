"""`imgpipe watch` as a user runs it: a subprocess, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pyvips")

from watch_support import clean_build, color, jpeg, make_site, output_of, temp_files  # noqa: E402

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.lock import Lock  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Watch:
    """`imgpipe watch` in `root`, with its stderr lines collected as they come."""

    def __init__(self, root: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from imgpipe.cli import main; main()", "watch", *args],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, self.lines
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.01)

    def finish(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def test_sigint_during_a_round_exits_cleanly_without_partial_files(tmp_path):
    root = make_site(tmp_path / "site")
    watch = Watch(root)
    try:
        watch.wait_for("initial build")
        for i in range(60):
            (root / f"images/n{i}.jpg").write_bytes(jpeg(color(i + 3), 1600, 1200))
        deadline = time.monotonic() + 60
        while not list((root / "public/img").glob("n*")):  # a round is writing outputs
            assert time.monotonic() < deadline, watch.lines
            time.sleep(0.002)
        watch.proc.send_signal(signal.SIGINT)
    finally:
        code = watch.finish()
    assert code in (0, 130), watch.lines
    assert watch.lines[-1].endswith("stopped") and not temp_files(root)
    assert not any("Traceback" in line for line in watch.lines), watch.lines
    lock = Lock(root / ".cache")
    lock.acquire(wait=False)  # released
    lock.release()
    assert build(load(root / "imgpipe.toml")).ok
    assert output_of(root) == clean_build(root, tmp_path / "clean")


def test_an_invalid_config_at_start_exits_2_with_the_message(tmp_path):
    root = make_site(tmp_path / "site", config='source = "images"\noutput = 3\n')
    watch = Watch(root)
    assert watch.finish() == 2
    assert any(line.startswith("error[bad-type]") and "output" in line for line in watch.lines)


class _RoundInProgress:
    """A watcher whose round takes a while to finish once asked to stop (it is writing)."""

    def __init__(self, *args, **kwargs):
        self.config = type("Config", (), {"source": "images", "path": "imgpipe.toml"})
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._round)

    def _round(self) -> None:
        self.stopping.wait()
        time.sleep(0.5)  # the source being written
        self.finished.set()

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout=None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def test_ctrl_c_waits_for_the_round_in_progress(monkeypatch):
    """Ctrl-C must not end the process before the round has finished the file it writes.
    A KeyboardInterrupt raised while the main thread waited in Thread.join made Python 3.11
    take the round's thread for finished (threading._wait_for_tstate_lock), so `stop()`
    returned at once and the process exited mid-write, leaving a temp file."""
    from imgpipe import watch as watch_module
    from imgpipe.cli import main

    watchers = []
    monkeypatch.setattr(
        watch_module,
        "Watcher",
        lambda *a, **kw: watchers.append(_RoundInProgress()) or watchers[-1],
    )
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        main.main(["watch"], standalone_mode=False)
    finally:
        timer.cancel()
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert watchers[0].finished.is_set() and not watchers[0].thread.is_alive()
