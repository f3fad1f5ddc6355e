"""What a build tells people (a progress bar on a terminal, plain lines in CI, the report page
`--report FILE.html` or the config's `report`) and machines (`--report FILE.json`). The only
rich importer; build.py only calls the `Events` hooks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import size_text
from .files import atomic_write
from .formats import by_name
from .html import Renderer
from .manifest import served_bytes, url_path
from .model import Events, Issue, PlannedItem, Summary

if TYPE_CHECKING:
    from .config import Config

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
    warnings = [w for w in s.warnings if w.stage != "config"]
    lines += [issue_line(w, "warning") for w in warnings[:SHOWN_WARNINGS]]
    if len(warnings) > SHOWN_WARNINGS:
        lines.append(f"... and {len(warnings) - SHOWN_WARNINGS} more warnings (see --report)")
    lines.append(
        f"{s.sources} sources; renditions: {s.built} built, {s.cached} cached, {s.failed} failed; "
        f"{download_text(s)}; {s.seconds:.2f} s"
    )
    return lines


def download_text(s: Summary) -> str:
    """What people care about: what browsers download (each image at its widest, in the first
    format offered) against the originals; then the disk the renditions take."""
    return (
        f"browsers download {size_text(s.bytes_served)}, "
        f"{change(s.bytes_served, s.bytes_before)} the originals' {size_text(s.bytes_before)} "
        f"(all renditions: {size_text(s.bytes_after)})"
    )


def change(new: int, old: int) -> str:
    """`new` against `old` in words: "88% less than", "12% more than", "as much as"."""
    if old <= 0 or new == old:
        return "as much as" if new == old else "more than"
    ratio = new / old - 1
    return f"{abs(ratio):.0%} {'less' if ratio < 0 else 'more'} than"


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
        "bytes": {"before": s.bytes_before, "after": s.bytes_after, "served": s.bytes_served},
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


def percent(rendition: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    """A rendition's bytes against its source's, signed: "-88%", "+12%"."""
    return f"{rendition['bytes'] / source['bytes'] - 1:+.0%}" if source["bytes"] else ""


def write_report(path: Path, s: Summary, config: Config) -> None:
    """`--report`: after the build, from its summary and the manifest it wrote."""
    sources = {}
    if path.suffix.lower() in HTML_SUFFIXES and config.manifest.is_file():
        sources = json.loads(config.manifest.read_bytes()).get("sources", {})
    atomic_write(path, render(path, s, sources, config.output))


def render(
    path: Path,
    s: Summary,
    sources: Mapping[str, Mapping[str, Any]],
    output: Path,
    timed: bool = True,
) -> bytes:
    """The report for `path`: a page for people when it ends in .html (`page`), else JSON
    for machines. Without `timed`, nothing that changes from one build of the same result to
    the next (seconds, files written, where renditions came from), so the build can leave an
    unchanged report unwritten."""
    data = report_data(s)
    if not timed:
        del data["seconds"], data["files"], data["origins"]
    if path.suffix.lower() in HTML_SUFFIXES:
        return page(s, data, sources, path, output)
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


HTML_SUFFIXES = (".html", ".htm")


def page(
    s: Summary,
    data: Mapping[str, Any],
    sources: Mapping[str, Mapping[str, Any]],
    path: Path,
    output: Path,
) -> bytes:
    """The report page at `path`: figures, failures, then each source (from its manifest
    entry) with a thumbnail, its renditions, the formats its groups dropped and its warnings.
    Files are linked relative to the page, so it opens from disk as well as from a server."""
    here = os.path.dirname(os.path.abspath(path))

    def link(rel: str) -> str:
        return url_path(os.path.relpath(os.path.join(os.path.abspath(output), rel), here))

    shown = []
    for rel, entry in sorted(sources.items()):
        renditions = sorted(entry["renditions"].items(), key=lambda r: (r[1]["width"], r[0]))
        still = [r for _, r in renditions if not by_name(r["format"]).video]
        thumb = min(still, key=lambda r: (r["width"], r["bytes"]), default=None)
        served = served_bytes(entry)
        shown.append(
            {
                "path": rel,
                "entry": entry,
                "thumb": thumb and {**thumb, "link": link(thumb["path"])},
                "served": served,
                "served_change": change(served, entry["bytes"]),
                "renditions": [
                    {**r, "label": label, "link": link(r["path"]), "change": percent(r, entry)}
                    for label, r in renditions
                ],
                "dropped": [
                    {**d, "group": name}
                    for name, group in sorted(entry["srcsets"].items())
                    for d in group["dropped"]
                ],
            }
        )
    text = Renderer().report(
        report=data,
        sources=shown,
        size=size_text,
        download=download_text(s),
        failures=[issue_line(f) for f in s.failures],
        warnings=[issue_line(w, "warning") for w in s.warnings if w.stage != "render"],
    )
    return text.encode()


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
