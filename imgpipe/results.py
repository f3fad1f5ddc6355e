"""What a build returns: the tallies gathered as its sources finish, and the `Summary` made
of them (or replayed from the last clean build's). build.py orchestrates; this module only
counts, so the summary is made from the records and issues themselves, never read back from
the manifest's JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import Issue, Origin, Summary

if TYPE_CHECKING:
    from .config import Config
    from .outputs import Outputs
    from .plan import Plan


@dataclass
class Results:
    """Mutable tallies of one build (kept apart from the frozen `Summary` they become)."""

    built: int = 0
    cached: int = 0
    failures: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)  # sources deliberately left out
    warnings: list[Issue] = field(default_factory=list)  # the renditions' own (render stage)
    origins: list[Origin] = field(default_factory=list)
    bytes_before: int = 0  # of the sources in the manifest
    bytes_after: int = 0  # of their renditions
    bytes_served: int = 0  # of the renditions browsers download (manifest.served_bytes)


def summary(
    results: Results, config: Config, plan: Plan, outputs: Outputs, started: float
) -> Summary:
    warnings = [Issue("config", p.code, p.message) for p in config.warnings]
    warnings.extend(results.notes)
    # By source, then as the manifest lists a source's warnings (sources finish in any order).
    warnings.extend(
        sorted(results.warnings, key=lambda w: (w.source, w.label or "", w.code, w.message))
    )
    # A whole-source failure counts every rendition of that source.
    per_source = {sp.source.relpath: len(sp.renditions) for sp in plan.sources}
    failed = sum(per_source.get(i.source, 1) if i.label is None else 1 for i in results.failures)
    return Summary(
        sources=len(plan.sources),
        built=results.built,
        cached=results.cached,
        failed=failed,
        bytes_before=results.bytes_before,
        bytes_after=results.bytes_after,
        bytes_served=results.bytes_served,
        seconds=time.monotonic() - started,
        files_written=outputs.written,
        files_removed=outputs.removed,
        failures=tuple(results.failures),
        warnings=tuple(warnings),
        origins=tuple(results.origins),
    )


def replay(saved: str, started: float) -> Summary:
    """The last clean build's summary, as this build would have produced it: all cached."""
    data = json.loads(saved)
    data.update(
        built=0,
        cached=data["built"] + data["cached"],
        files_written=0,
        files_removed=0,
        seconds=time.monotonic() - started,
        failures=(),
        warnings=tuple(Issue(**w) for w in data["warnings"]),
        origins=tuple(Origin(o["source"], o["label"], "cache") for o in data.get("origins", ())),
    )
    return Summary(**data)
