"""`imgpipe check`: what a build would make of the config and the sources, building nothing."""

from __future__ import annotations

from .build import default_engine
from .config import Config
from .errors import ImageError
from .formats import FORMATS
from .model import Engine, Issue
from .plan import SourcePlan, make
from .sources import Skipped, scan


def check(
    config: Config, engine: Engine | None = None
) -> tuple[list[tuple[str, tuple[str, ...]]], list[Skipped], list[Issue]]:
    """Every matched source with the labels a build would make of it, the sources discovery
    had to leave out, and the sources whose transparency a rule would flatten. Reads only
    the sources that are in a family with a format that moves (their headers: a family's
    videos are only for animations, SourcePlan.fitting) or that some JPEG rendition is asked
    of (their headers, and the alpha band of those that have one: an opaque alpha band loses
    nothing, and the build does not warn about it either). Raises ConfigError for label
    clashes (the one check that needs the source list)."""
    engine = engine or default_engine()
    files, skipped = scan(config)
    plan = make(config, files, lambda f: "", "check")
    fitted = [_fitted(sp, config, engine) for sp in plan.sources]
    return (
        [(sp.source.relpath, tuple(r.label for r in sp.renditions)) for sp in fitted],
        skipped,
        [w for sp in fitted for w in _flattened(sp, config, engine)],
    )


def _fitted(sp: SourcePlan, config: Config, engine: Engine) -> SourcePlan:
    """The renditions the build would make of it, once its header says whether it moves."""
    if not sp.only_for(animated=True) and not sp.only_for(animated=False):
        return sp
    try:
        frames = engine.open_source(sp.source.path, config.limits).info.frames
    except ImageError:
        return sp  # the build reports it, with the stage it failed at
    return sp.fitting(animated=frames > 1)


def _flattened(sp: SourcePlan, config: Config, engine: Engine) -> list[Issue]:
    """The renditions that would flatten this source's alpha channel (JPEG has none)."""
    labels = [r.label for r in sp.renditions if r.format in FORMATS and not FORMATS[r.format].alpha]
    if not labels or sp.source.relpath.lower().endswith((".jpg", ".jpeg")):
        return []  # a JPEG source has no alpha either (extensions lie: the build says so)
    try:
        if not engine.open_source(sp.source.path, config.limits).transparent():
            return []
    except ImageError:
        return []  # the build reports it, with the stage it failed at
    return [
        Issue(
            "check",
            "alpha-flattened",
            f"has transparent pixels, but {', '.join(labels)} "
            f"{'is' if len(labels) == 1 else 'are'} JPEG, which has none: transparent pixels "
            "would be flattened onto the bgcolor (white); use the format auto instead, which "
            'picks PNG for transparent images (in a family: formats = ["webp", "auto"])',
            source=sp.source.relpath,
        )
    ]
