"""imgpipe.toml (or `[tool.imgpipe]` in pyproject.toml) → a frozen, validated `Config`.

Validation happens once, here: every wrong type and bad option string is an error naming its
key path (`rules[1].widths[2]`); unknown keys are warnings with a suggestion. Everything after
this module can trust the config.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem, closest, describe
from .family import FAMILY_KEYS, LABEL, RenditionSpec, parse_family
from .family import SrcsetSpec as SrcsetSpec  # re-exported: where plan, manifest, tests look
from .globs import compile_globs
from .image_data import ImageData, parse_images
from .layout import CONFIG_FILE, MANIFEST_NAME, PYPROJECT, SNIPPETS_DIR, check_paths
from .model import MAX_BYTES, MAX_FRAMES, MAX_PIXELS, Limits
from .options import METADATA_POLICIES, VOCABULARY
from .validate import Validator

TOP_KEYS = (
    "source",
    "output",
    "base_url",
    "cache_dir",
    "jobs",
    "manifest",
    "snippets",
    "templates",
    "follow_symlinks",
    "limits",
    "presets",
    "rules",
    "scheduler",
    "remote_cache",
    "remote_cache_options",
    "images",
    "cache_keep",
    "report",
)
# Bytes of encoded results that no build uses any more kept in cache_dir (state.py, `retired`),
# so putting an image or a rule back costs a copy: enough for the renditions of about a
# hundred edited photos (12 renditions of ~200 KB each), small beside a CI cache of photos.
CACHE_KEEP = 256_000_000
# Beyond one machine (imgpipe/cluster.py, imgpipe/store.py): what the values must look like.
_SCHEDULER = re.compile(r"^(tcp|tls)://[^/\s]+:\d+$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_NEEDS_STORE = Problem(
    "scheduler-needs-remote-cache",
    "scheduler is set but remote_cache is "
    "not: workers share no filesystem with this machine; set remote_cache = "
    '"s3://bucket/prefix" (any fsspec URL)',
    "remote_cache",
)
LIMIT_KEYS = ("max_pixels", "max_bytes", "max_frames")
RULE_KEYS = ("include", "exclude", "renditions", *FAMILY_KEYS, "rasterize_svg", "metadata")


@dataclass(frozen=True)
class Rule:
    index: int
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    renditions: tuple[RenditionSpec, ...]
    srcset: SrcsetSpec | None
    _include_re: re.Pattern = field(repr=False, compare=False)
    _exclude_re: re.Pattern | None = field(repr=False, compare=False)
    # SVGs are published as they are unless a rule that matches them says otherwise.
    rasterize_svg: bool = False

    @property
    def where(self) -> str:
        return f"rules[{self.index}]"

    def matches(self, relpath: str) -> bool:
        """`relpath` is relative to the source dir, with forward slashes."""
        if not self._include_re.match(relpath):
            return False
        return not (self._exclude_re and self._exclude_re.match(relpath))


@dataclass(frozen=True)
class Config:
    path: Path  # the file it came from
    root: Path  # paths in the file are relative to its directory
    source: Path
    output: Path
    base_url: str
    cache_dir: Path
    jobs: int  # resolved: never 0
    manifest: Path
    snippets: Path
    templates: Path | None
    limits: Limits
    presets: dict[str, str]
    rules: tuple[Rule, ...]
    warnings: tuple[Problem, ...] = ()
    follow_symlinks: bool = False  # follow links that lead out of the source tree
    scheduler: str | None = None  # a dask scheduler address: render there (imgpipe/cluster.py)
    remote_cache: str | None = None  # an fsspec URL: the shared store (imgpipe/store.py)
    remote_cache_options: tuple[tuple[str, Any], ...] = ()  # fsspec storage options
    images: dict[str, ImageData] = field(default_factory=dict)  # [images."path"] (image_data)
    cache_keep: int = CACHE_KEEP  # bytes of unused encoded results kept for an undo
    report: Path | None = None  # the build report written by every build (.html or .json)


def find(directory: Path) -> tuple[Path, dict[str, Any], list[Problem]]:
    """The config file in `directory` and its raw table. The dedicated file wins."""
    warnings: list[Problem] = []
    dedicated, pyproject = directory / CONFIG_FILE, directory / PYPROJECT
    py_table = None
    if pyproject.is_file():
        py_table = _read_toml(pyproject).get("tool", {}).get("imgpipe")
    if dedicated.is_file():
        if py_table is not None:
            warnings.append(
                Problem(
                    "config-shadowed",
                    f"[tool.imgpipe] in {PYPROJECT} is ignored: {CONFIG_FILE} wins",
                )
            )
        return dedicated, _read_toml(dedicated), warnings
    if py_table is not None:
        if not isinstance(py_table, dict):
            raise ConfigError(describe("bad-type", str(py_table), "a table", "tool.imgpipe"))
        return pyproject, py_table, warnings
    raise ConfigError(
        Problem(
            "no-config",
            f"no {CONFIG_FILE} or [tool.imgpipe] in {PYPROJECT} in {directory}; "
            "run `imgpipe init` to write a starter file",
        )
    )


def load(path: Path | None = None, directory: Path | None = None) -> Config:
    """Read and validate a config: `path` if given, else look in `directory` (default cwd)."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(Problem("no-config", f"config file {path} does not exist"))
        raw = _read_toml(path)
        if path.name == PYPROJECT:
            raw = raw.get("tool", {}).get("imgpipe", {})
        warnings: list[Problem] = []
    else:
        path, raw, warnings = find(Path(directory or Path.cwd()))
    return from_dict(raw, path.resolve().parent, path, warnings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(Problem("bad-toml", f"{path}: {exc}")) from None


def from_dict(
    raw: dict[str, Any], root: Path, path: Path | None = None, warnings: list[Problem] | None = None
) -> Config:
    """Validate a raw table; raise ConfigError listing every problem found."""
    v = Validator(list(warnings or []))
    v.unknown_keys(raw, TOP_KEYS, "")
    source = v.string(raw, "source", "")
    output = v.string(raw, "output", "")
    for key in ("source", "output"):
        if key not in raw:
            v.errors.append(Problem("missing-key", f"{key!r} is required (a directory path)", key))
    base_url = v.string(raw, "base_url", "", default="/")
    if base_url is not None and not base_url.endswith("/"):
        base_url += "/"
    cache_dir = v.string(raw, "cache_dir", "", default=".imgpipe-cache")
    jobs = v.integer(raw, "jobs", "", default=0, low=0, high=1024)
    manifest = v.string(raw, "manifest", "")
    snippets = v.string(raw, "snippets", "")
    templates = v.string(raw, "templates", "")
    cache_keep = v.size(raw, "cache_keep", "", CACHE_KEEP)
    report = v.string(raw, "report", "")
    follow_symlinks = raw.get("follow_symlinks", False)
    if not isinstance(follow_symlinks, bool):
        v.type_error(follow_symlinks, "true or false", "follow_symlinks")
    limits = _limits(v, raw.get("limits", {}))
    scheduler = _matching(
        v, raw, "scheduler", _SCHEDULER, "a dask scheduler address such as tcp://10.0.0.5:8786"
    )
    remote_cache = _matching(
        v, raw, "remote_cache", _URL, "an fsspec URL such as s3://bucket/prefix"
    )
    remote_options = raw.get("remote_cache_options", {})
    if not isinstance(remote_options, dict):
        v.type_error(remote_options, "a table of fsspec storage options", "remote_cache_options")
        remote_options = {}
    presets = _presets(v, raw.get("presets", {}))
    images = parse_images(v, raw.get("images", {}))
    rules_raw = raw.get("rules", [])
    rules: list[Rule] = []
    if not isinstance(rules_raw, list):
        v.type_error(rules_raw, "an array of tables ([[rules]])", "rules")
    else:
        for index, rule_raw in enumerate(rules_raw):
            rule = _rule(v, rule_raw, index, presets or {})
            if rule:
                rules.append(rule)
        if not rules_raw:
            v.warnings.append(Problem("no-rules", "no [[rules]]: nothing will be built", "rules"))
    if scheduler and not remote_cache:
        v.errors.append(_NEEDS_STORE)
    if v.errors:
        raise ConfigError(v.errors, tuple(v.warnings))

    def resolve(p: str) -> Path:
        return Path(os.path.normpath(root / p))

    out_dir = resolve(output)
    config = Config(
        path=path or root / CONFIG_FILE,
        root=root,
        source=resolve(source),
        output=out_dir,
        base_url=base_url,
        cache_dir=resolve(cache_dir),
        jobs=jobs or os.cpu_count() or 1,
        manifest=resolve(manifest) if manifest else out_dir / MANIFEST_NAME,
        snippets=resolve(snippets) if snippets else out_dir / SNIPPETS_DIR,
        templates=resolve(templates) if templates else None,
        limits=limits,
        presets=presets or {},
        rules=tuple(rules),
        warnings=tuple(v.warnings),
        follow_symlinks=follow_symlinks is True,
        scheduler=scheduler,
        remote_cache=remote_cache,
        remote_cache_options=tuple(sorted(remote_options.items())),
        images=images,
        cache_keep=CACHE_KEEP if cache_keep is None else cache_keep,
        report=resolve(report) if report else None,
    )
    written = {
        "source": source,
        "output": output,
        "cache_dir": cache_dir,
        "manifest": manifest,
        "snippets": snippets,
        "report": report,
    }
    check_paths(config, {k: value for k, value in written.items() if value})
    return config


def with_scheduler(config: Config, scheduler: str) -> Config:
    """`--scheduler` / IMGPIPE_SCHEDULER, checked as the config key is; it wins over the key."""
    if not _SCHEDULER.match(scheduler):
        raise ConfigError(
            describe(
                "bad-scheduler",
                scheduler,
                "a dask scheduler address such as tcp://10.0.0.5:8786",
                "--scheduler",
            )
        )
    if not config.remote_cache:
        raise ConfigError(_NEEDS_STORE)
    return replace(config, scheduler=scheduler)


def _matching(v: Validator, raw: dict, key: str, pattern: re.Pattern, expected: str) -> str | None:
    value = v.string(raw, key, "")
    if value is not None and not pattern.match(value):
        v.errors.append(describe(f"bad-{key.replace('_', '-')}", value, expected, key))
        return None
    return value


def _limits(v: Validator, raw: Any) -> Limits:
    if not isinstance(raw, dict):
        v.type_error(raw, "a table", "limits")
        return Limits()
    v.unknown_keys(raw, LIMIT_KEYS, "limits")
    return Limits(
        max_pixels=v.integer(raw, "max_pixels", "limits", default=MAX_PIXELS, low=1) or MAX_PIXELS,
        max_bytes=v.integer(raw, "max_bytes", "limits", default=MAX_BYTES, low=1) or MAX_BYTES,
        max_frames=v.integer(raw, "max_frames", "limits", default=MAX_FRAMES, low=1) or MAX_FRAMES,
    )


def _presets(v: Validator, raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        v.type_error(raw, 'a table of name = "options"', "presets")
        return None
    presets: dict[str, str] = {}
    for name, text in raw.items():
        where = f"presets.{name}"
        if not isinstance(text, str):
            v.type_error(text, "an option string", where)
            continue
        if name in VOCABULARY or not LABEL.match(name) or re.match(r"^\d", name):
            v.errors.append(
                describe(
                    "bad-preset-name",
                    name,
                    "a name that is not an option token (letters, digits, - _, "
                    "not starting with a digit)",
                    where,
                )
            )
            continue
        presets[name] = text
    for name in list(presets):
        try:
            presets[name] = expand(presets[name], presets, (name,))
        except ConfigError as exc:
            v.errors.extend(exc.problems)
            del presets[name]
    for name, text in presets.items():
        v.recipe(text, f"presets.{name}")
    return presets


def expand(text: str, presets: dict[str, str], _seen: tuple[str, ...] = ()) -> str:
    """Replace preset names used as tokens by their option strings (presets may nest)."""
    tokens = []
    for token in text.split(","):
        name = token.strip()
        if name in presets:
            if name in _seen:
                raise ConfigError(
                    Problem(
                        "preset-cycle",
                        f"preset {name!r} refers to itself via {' -> '.join(_seen + (name,))}",
                        f"presets.{name}",
                    )
                )
            tokens.append(expand(presets[name], presets, _seen + (name,)))
        else:
            tokens.append(token)
    return ",".join(tokens)


def _rule(v: Validator, raw: Any, index: int, presets: dict[str, str]) -> Rule | None:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        v.type_error(raw, "a table", where)
        return None
    v.unknown_keys(raw, RULE_KEYS, where)
    include = v.string_list(raw, "include", where)
    exclude = v.string_list(raw, "exclude", where) or []
    if "include" not in raw:
        v.errors.append(
            Problem("missing-key", "'include' is required (a list of globs)", f"{where}.include")
        )
    renditions: list[RenditionSpec] = []
    policy = _metadata(v, raw, where)
    rend_raw = raw.get("renditions", {})
    if not isinstance(rend_raw, dict):
        v.type_error(rend_raw, 'a table of label = "options"', f"{where}.renditions")
    else:
        for label, text in rend_raw.items():
            path = f"{where}.renditions.{label}"
            if not LABEL.match(label):
                v.errors.append(
                    describe("bad-label", label, "a label of letters, digits, - and _", path)
                )
            elif not isinstance(text, str):
                v.type_error(text, "an option string", path)
            else:
                recipe = v.recipe(with_metadata(expand(text, presets), policy), path)
                if recipe:
                    renditions.append(RenditionSpec(label, recipe, path))
    srcset = parse_family(
        v, raw, where, lambda text: with_metadata(expand(text, presets), policy), renditions
    )
    if not renditions and srcset is None and not any(k in raw for k in ("renditions", "widths")):
        v.errors.append(Problem("empty-rule", "a rule needs `renditions` or `widths`", where))
    labels: dict[str, str] = {}
    for spec in renditions:
        if spec.label in labels:
            v.errors.append(
                Problem(
                    "label-clash",
                    f"label {spec.label!r} of {spec.where} is also made by {labels[spec.label]}",
                    spec.where,
                )
            )
        labels[spec.label] = spec.where
    if include is None or v.errors:
        return None
    try:
        include_re = compile_globs(include)
        exclude_re = compile_globs(exclude) if exclude else None
    except ValueError as exc:
        v.errors.append(Problem("bad-glob", str(exc), f"{where}.include"))
        return None
    rasterize = raw.get("rasterize_svg", False)
    if not isinstance(rasterize, bool):
        v.type_error(rasterize, "true or false", f"{where}.rasterize_svg")
        return None
    return Rule(
        index,
        tuple(include),
        tuple(exclude),
        tuple(renditions),
        srcset,
        include_re,
        exclude_re,
        rasterize_svg=rasterize,
    )


def _metadata(v: Validator, raw: dict, where: str) -> str | None:
    """The rule's `metadata` key: the policy of its renditions whose options do not say."""
    policy = v.string(raw, "metadata", where)
    if policy is None or policy in METADATA_POLICIES:
        return policy
    v.errors.append(
        describe(
            "bad-metadata",
            policy,
            " or ".join(f'"{m}"' for m in METADATA_POLICIES),
            f"{where}.metadata",
            suggestion=closest(policy, list(METADATA_POLICIES)) or "strip",
        )
    )
    return None


def with_metadata(options: str, policy: str | None) -> str:
    """`options` with a rule's metadata policy added, unless they name one themselves."""
    said = any(t.strip().lower().startswith("metadata=") for t in options.split(","))
    if policy is None or said:
        return options
    return f"{options},metadata={policy}" if options.strip() else f"metadata={policy}"
