"""Where a build reads and writes, checked before anything runs: `output`, `manifest` and
`snippets` never inside `source` or `cache_dir` (nor those inside them), the manifest and the
report never on a config file. Found in the wild: `manifest = "src/photo.jpg"` replaced a
photo with JSON.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, describe

if TYPE_CHECKING:  # config imports this module to run the check
    from .config import Config

MANIFEST_NAME = "imgpipe-manifest.json"
SNIPPETS_DIR = "_snippets"
CONFIG_FILE = "imgpipe.toml"
PYPROJECT = "pyproject.toml"

# Directories that must not overlap (either inside the other): the cache must survive output
# cleaning and never be published or read as a source; outputs and snippets inside the source
# tree would be discovered as sources on the next build.
_APART = (
    ("cache_dir", "source"),
    ("cache_dir", "output"),
    ("output", "source"),
    ("snippets", "source"),
    ("snippets", "cache_dir"),
)


def check_paths(config: Config, given: dict[str, str]) -> None:
    """Nothing the build writes may land on what it reads or keeps: compared as real paths,
    so a symlinked directory cannot smuggle the output into the source tree. `given` holds
    the values as written in the file, for the messages. Raises ConfigError."""
    real = {
        key: Path(os.path.realpath(getattr(config, key)))
        for key in ("source", "output", "cache_dir", "snippets", "manifest")
    }
    defaults = {
        "cache_dir": ".imgpipe-cache",
        "manifest": _relative(config.output / MANIFEST_NAME, config.root),
        "snippets": _relative(config.output / SNIPPETS_DIR, config.root),
    }
    problems = []
    for a, b in _APART:
        if a == "snippets" and a not in given:  # by default inside output: checked with it
            continue
        if _inside(real[a], real[b]) or _inside(real[b], real[a]):
            problems.append(
                describe(
                    "overlapping-dirs",
                    given.get(a, str(getattr(config, a))),
                    f"a directory outside {b} ({getattr(config, b)}) that does not contain it "
                    "either",
                    a,
                    suggestion=defaults.get(a),
                )
            )
    # The manifest (and the report) is one file: it may sit in `output`, never in what is read
    # or kept, never on the config (or another config file), nor on a directory.
    configs = {
        Path(os.path.realpath(p))
        for p in (config.path, config.root / CONFIG_FILE, config.root / PYPROJECT)
    }
    for key in ("manifest", "report"):
        if key not in given:
            continue
        file = Path(os.path.realpath(getattr(config, key)))
        if (
            file in configs
            or file in (real["output"], real["snippets"])
            or (key == "report" and file == real["manifest"])
            or file.is_dir()
            or any(_inside(file, real[d]) for d in ("source", "cache_dir"))
        ):
            problems.append(
                describe(
                    "overlapping-dirs",
                    given[key],
                    f"a file outside source ({config.source}) and cache_dir ({config.cache_dir}), "
                    "and not a config file or a directory",
                    key,
                    suggestion=defaults["manifest"] if key == "manifest" else "build-report.html",
                )
            )
    if problems:
        raise ConfigError(problems)


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)
