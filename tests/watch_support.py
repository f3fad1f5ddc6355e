"""Sites, images and a clean-build oracle for the watch tests (helpers only; no tests here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.state import TEMP_PREFIX  # noqa: E402

# Tiny images and two cheap renditions: the watcher's timing is under test, not the encoder.
CONFIG = """
source = "images"
output = "public/img"
base_url = "/img/"
cache_dir = ".cache"
jobs = 2

[[rules]]
include = ["**/*.jpg"]
widths = [32, 48]
formats = ["jpeg"]
sizes = "50vw"
"""


def jpeg(rgb: tuple[int, int, int], width: int = 64, height: int = 48) -> bytes:
    image = pyvips.Image.black(width, height, bands=3).new_from_image(list(rgb))
    return image.cast("uchar").copy(interpretation="srgb").jpegsave_buffer(Q=90)


def color(i: int) -> tuple[int, int, int]:
    """Distinct, well separated colours for i in 0..~250."""
    return ((i * 53) % 256, (i * 97 + 80) % 256, (255 - i * 29) % 256)


def make_site(
    root: Path, names: tuple[str, ...] = ("a.jpg", "b.jpg", "sub/c.jpg"), config: str = CONFIG
) -> Path:
    for i, name in enumerate(names):
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(color(i)))
    (root / "imgpipe.toml").write_text(config)
    return root


def output_of(root: Path) -> tuple[dict, set[str]]:
    """The manifest (parsed) and every file name under the output dir."""
    out = root / "public/img"
    manifest = json.loads((out / "imgpipe-manifest.json").read_text())
    return manifest, {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def clean_build(root: Path, scratch: Path) -> tuple[dict, set[str]]:
    """What a fresh `imgpipe build` makes of `root`'s sources and config, built in `scratch`."""
    shutil.copytree(root / "images", scratch / "images", symlinks=False)
    shutil.copy(root / "imgpipe.toml", scratch / "imgpipe.toml")
    summary = build(load(scratch / "imgpipe.toml"))
    assert summary.ok, summary.failures
    return output_of(scratch)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def pixel(path: Path) -> list[float]:
    """The centre pixel of an image file, decoded from its bytes (never by file name: libvips
    would hand back its cached decode of an earlier file under the same name)."""
    image = pyvips.Image.new_from_buffer(path.read_bytes(), "")
    return image.getpoint(image.width // 2, image.height // 2)


def rendition(root: Path, source: str, label: str = "48-jpeg") -> Path:
    manifest, _files = output_of(root)
    return root / "public/img" / manifest["sources"][source]["renditions"][label]["path"]


def close(a: list[float], b: tuple[int, int, int], tolerance: float = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))
