"""Disk full and read-only directories, for real: the CLI on small tmpfs mounts made in a
private mount namespace (`unshare -m`, so the mounts vanish with the process). The build ends
with one clear line and exit 1, no traceback, and what an earlier build wrote stays whole.
Issue 18, item 3."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

REPO = Path(__file__).resolve().parents[1]
CONFIG = """
source = "images"
output = "public"
cache_dir = ".cache"
jobs = 1

[[rules]]
include = ["*.jpg"]
renditions = { small = "64,quality=80", big = "400,quality=90" }
"""


def photo(path: Path, seed: int) -> None:
    xyz = pyvips.Image.xyz(480, 320)
    img = (xyz[0] * seed % 256).bandjoin([xyz[1] % 256, (xyz[0] ^ xyz[1]) % 256])
    img.cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=95)


def run_private(root: Path, script: str) -> subprocess.CompletedProcess:
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.decode().strip()}")
    imgpipe = f"{shlex.quote(sys.executable)} -c 'from imgpipe.cli import main; main()'"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script.replace("IMGPIPE", imgpipe)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def site(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    photo(root / "images/one.jpg", 3)
    (root / "spare").mkdir()
    photo(root / "spare/two.jpg", 7)
    (root / "imgpipe.toml").write_text(CONFIG)
    return root


# Each case: where the small tmpfs goes, and how it is then made unwritable. The first build
# fits; a second source arrives, and the second build must fail cleanly. `after/` keeps a
# copy of what the mount held, taken before the namespace (and its mounts) goes away.
CASES = {
    "output-full": ("public", "cat /dev/zero > public/filler 2>/dev/null || true", "disk-full"),
    "cache-full": (".cache", "cat /dev/zero > .cache/filler 2>/dev/null || true", "disk-full"),
    "output-read-only": ("public", "mount -o remount,ro public", "read-only"),
    "cache-read-only": (".cache", "mount -o remount,ro .cache", "read-only"),
}


@pytest.mark.parametrize("case", CASES)
def test_disk_full_or_read_only_ends_the_build_with_one_line(tmp_path, case):
    mount, spoil, code = CASES[case]
    root = site(tmp_path)
    result = run_private(
        root,
        f"""
        set -e
        mkdir -p {mount} && mount -t tmpfs -o size=400k tmpfs {mount}
        IMGPIPE build --no-progress > first.out 2> first.err
        cp public/imgpipe-manifest.json manifest-before.json
        cp spare/two.jpg images/two.jpg
        {spoil}
        set +e
        IMGPIPE build --no-progress > second.out 2> second.err
        echo $? > second.rc
        rm -f {mount}/filler
        mkdir after && cp -r public after/public
    """,
    )
    assert result.returncode == 0, result.stderr
    assert (root / "first.err").read_text().count("error") == 0
    err = (root / "second.err").read_text()
    assert (root / "second.rc").read_text().strip() == "1", err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith(f"error[{code}]: cannot write "), err
    # Nothing lost: the manifest and the outputs of the first build are still whole.
    before = json.loads((root / "manifest-before.json").read_text())
    after = json.loads((root / "after/public/imgpipe-manifest.json").read_text())
    assert after == before
    for rendition in before["sources"]["one.jpg"]["renditions"].values():
        image = pyvips.Image.new_from_file(str(root / "after/public" / rendition["path"]))
        assert (image.width, image.height) == (rendition["width"], rendition["height"])


@pytest.mark.parametrize(
    "cache_dir, reason",
    [
        ("notes.txt/cache", "{root}/notes.txt is a file, not a directory"),
        ("notes.txt", "it is a file, not a directory"),
    ],
)
def test_a_cache_dir_that_cannot_be_created_is_one_config_error(tmp_path, cache_dir, reason):
    """Issue 12: a cache_dir under a file (or a file itself) ended in a traceback."""
    from click.testing import CliRunner

    from imgpipe.cli import main

    root = site(tmp_path / "site")
    (root / "notes.txt").write_text("not a directory\n")
    toml = root / "imgpipe.toml"
    toml.write_text(CONFIG.replace('cache_dir = ".cache"', f'cache_dir = "{cache_dir}"'))
    done = CliRunner().invoke(main, ["build", "-c", str(toml), "--no-progress"])
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit), done.output
    assert done.stderr.splitlines() == [
        f"error[bad-cache-dir]: {root / cache_dir}: cannot create cache_dir "
        f"({reason.format(root=root)}); expected a directory imgpipe can create for its cache; "
        "set cache_dir to another path, or move the file out of the way"
    ]
    assert not (root / "public").exists()
