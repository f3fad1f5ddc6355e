"""Small real sites for the end-to-end and cluster tests (helpers only; no tests here)."""

from __future__ import annotations

from pathlib import Path

import pyvips


def draw_sources(root: Path, count: int, width: int, height: int) -> None:
    """`count` distinct JPEG photos of about width x height and a half-transparent PNG logo,
    under root/images (the layout every test config here reads)."""
    (root / "images/photos").mkdir(parents=True)
    for i in range(count):
        xyz = pyvips.Image.xyz(width + 16 * i, height)
        img = (xyz[0] * (i + 1) % 256).bandjoin([xyz[1] % 256, (xyz[0] + xyz[1]) % 256])
        img.cast("uchar").copy(interpretation="srgb").jpegsave(
            str(root / f"images/photos/p{i}.jpg"), Q=90
        )
    rgba = pyvips.Image.black(200, 120, bands=4).new_from_image([255, 80, 0, 128])
    rgba.cast("uchar").copy(interpretation="srgb").pngsave(str(root / "images/logo.png"))


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
