"""Shared test helpers (add only; keep small)."""

from __future__ import annotations

import pytest
from fake_engine import FakeEngine


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


class Synth:
    """Real images made with pyvips for engine tests (pyvips imported only when used).

    coords: pixel (x, y) = RGB(x % 256, y % 256, (x // 256) * 16 + y // 256), so a crop's
    position can be read back from any output pixel (tests/data/conformance/geometry.toml).
    """

    def __init__(self):
        import pyvips

        self.vips = pyvips

    def coords(self, width: int, height: int):
        xy = self.vips.Image.xyz(width, height)
        x, y = xy[0], xy[1]
        image = (x % 256).bandjoin([y % 256, (x // 256) * 16 + y // 256])
        return image.cast("uchar").copy(interpretation="srgb")

    def solid(self, width: int, height: int, hexcolor: str = "336699"):
        rgb = [int(hexcolor[i : i + 2], 16) for i in (0, 2, 4)]
        return (
            self.vips.Image.black(width, height, bands=3)
            .new_from_image(rgb)
            .cast("uchar")
            .copy(interpretation="srgb")
        )

    def block(self, width, height, background, rect, color):
        left, top, w, h = rect
        return self.solid(width, height, background).insert(self.solid(w, h, color), left, top)

    def decode(self, data: bytes):
        return self.vips.Image.new_from_buffer(data, "")


@pytest.fixture(scope="session")
def synth() -> Synth:
    return Synth()


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (tests/cluster_support.py), shared, always killed."""
    from cluster_support import start_s3, stop

    server = start_s3(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="session")
def dask_cluster(s3, tmp_path_factory):
    """`dask scheduler` + two `dask worker`s on 127.0.0.1, reading S3 from moto; shared."""
    pytest.importorskip("distributed")
    from cluster_support import start_cluster

    cluster = start_cluster(s3.env(), tmp_path_factory.mktemp("dask") / "dask.log")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def example_site(tmp_path_factory):
    """The repository's example site, built as the README says, in a temp copy (shared by
    the browser and audit tests: it takes ~20-50 s). Returns its published folder."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("example")
    shutil.copy(repo / "imgpipe.toml", root)
    shutil.copytree(
        repo / "example-site",
        root / "example-site",
        ignore=shutil.ignore_patterns("public", "__pycache__"),
    )
    env = {**os.environ, "PYTHONPATH": str(repo)}
    for command in (
        ["-c", "from imgpipe.cli import main; main()", "build"],
        [str(root / "example-site/make_page.py")],
    ):
        done = subprocess.run(
            [sys.executable, *command],
            cwd=root,
            env=env,
            timeout=300,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return root / "example-site/public"


def pytest_sessionfinish(session, exitstatus):
    """Whatever services a test started and did not stop (an interrupted run) go too."""
    import sys

    support = sys.modules.get("cluster_support")
    if support is not None:
        support.stop_all()
