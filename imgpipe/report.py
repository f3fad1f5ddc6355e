"""What a build tells people (a progress bar on a terminal, plain lines in CI) and machines
(`--report FILE.json`). The only rich importer; build.py only calls the `Events` hooks."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from .errors import size_text
from .files import atomic_write
from .model import Events, Issue, PlannedItem, Summary

REPORT_VERSION = 1


class PlainEvents(Events):
    """One line per source that was rendered or failed (cached ones stay quiet: a no-op CI
    build of 10,000 sources should print a summary, not 10,000 lines)."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.done = 0
        self.total = 0

    def waiting(self, holder: str) -> None:
        print(
            f"waiting for another imgpipe build (pid {holder}) to finish...",
            file=self.stream,
            flush=True,
        )

    def start(self, sources: int, to_render: int) -> None:
        self.total = sources
        print(f"{sources} sources, {to_render} renditions to render", file=self.stream, flush=True)

    def source_done(self, relpath: str, built: int, failed: int) -> None:
        self.done += 1
        if built or failed:
            tail = f", {failed} failed" if failed else ""
            print(
                f"[{self.done}/{self.total}] {relpath}: {built} built{tail}",
                file=self.stream,
                flush=True,
            )


class TerminalEvents(Events):
    """A rich progress bar over sources; used only when stderr is a terminal."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]building"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
        )
        self.task = None

    def waiting(self, holder: str) -> None:
        self.console.print(f"waiting for another imgpipe build (pid {holder}) to finish...")

    def start(self, sources: int, to_render: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("", total=sources)

    def source_done(self, relpath: str, built: int, failed: int) -> None:
        self.progress.update(self.task, advance=1, description=relpath)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


SHOWN_WARNINGS = 10  # the rest are in --report and the manifest


def summary_lines(s: Summary) -> list[str]:
    """Failures, the first few render warnings (config ones were printed at load), totals."""
    lines = [issue_line(f) for f in s.failures]
    warnings = [w for w in s.warnings if w.stage not in ("config", "info")]
    lines += [issue_line(w, "info") for w in s.warnings if w.stage == "info"]
    lines += [issue_line(w, "warning") for w in warnings[:SHOWN_WARNINGS]]
    if len(warnings) > SHOWN_WARNINGS:
        lines.append(f"... and {len(warnings) - SHOWN_WARNINGS} more warnings (see --report)")
    lines.append(
        f"{s.sources} sources; renditions: {s.built} built, {s.cached} cached, {s.failed} failed; "
        f"{size_text(s.bytes_before)} -> {size_text(s.bytes_after)}; {s.seconds:.2f} s"
    )
    return lines


def issue_line(issue: Issue, kind: str = "error") -> str:
    """The one wording of a build's failure (with its stage) or warning, for the CLI and watch."""
    place = f"{issue.source} [{issue.label}]" if issue.label else issue.source
    stage = f"{issue.stage}: " if kind == "error" else ""
    return f"{kind}[{issue.code}]: {place}: {stage}{issue.message}"


def report_data(s: Summary) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "ok": s.ok,
        "sources": s.sources,
        "renditions": {"built": s.built, "cached": s.cached, "failed": s.failed},
        "bytes": {"before": s.bytes_before, "after": s.bytes_after},
        "seconds": round(s.seconds, 3),
        "files": {"written": s.files_written, "removed": s.files_removed},
        "failures": [asdict(f) for f in s.failures],
        "warnings": [asdict(w) for w in s.warnings],
        # Where each rendition came from: "local", a dask worker's address, "cache" or
        # "remote-cache" (source -> label -> where).
        "origins": _origins(s),
    }


def _origins(s: Summary) -> dict[str, dict[str, str]]:
    where: dict[str, dict[str, str]] = {}
    for o in s.origins:
        where.setdefault(o.source, {})[o.label] = o.where
    return where


def write_report(path: Path, s: Summary) -> None:
    atomic_write(path, (json.dumps(report_data(s), indent=2, sort_keys=True) + "\n").encode())


def plan_lines(items: list[PlannedItem]) -> list[str]:
    """`--dry-run`: every rendition with its state, then the totals."""
    lines = []
    current = None
    for item in items:
        if item.source != current:
            current = item.source
            lines.append(item.source)
        state = "cached" if item.cached else "build "
        size = "x".join(map(str, item.size)) if item.size else "?"
        lines.append(
            f"  {state} {item.label:<16} {item.options:<32} {size:>9}  "
            f"{item.output or '(name known after render: format=auto)'}"
        )
    sources = len({i.source for i in items})
    cached = sum(i.cached for i in items)
    lines.append(
        f"{sources} sources; {len(items)} renditions: {cached} cached, "
        f"{len(items) - cached} to build"
    )
    return lines
