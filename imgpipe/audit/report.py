"""An audit's findings for people and for tools: a terminal table, JSON and an HTML page.

The JSON field names (`pages`, `findings`: `page`, `img`, `kind`, `sizes`, `suggested`,
`viewport`, `detail`) are read by other tools: they do not change.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..files import atomic_write
from . import Report
from .findings import KINDS, Finding


def table_lines(report: Report) -> list[str]:
    """A table: one row per finding (page, kind, viewport, image), its detail and fix
    indented below it; then the totals."""
    lines = []
    rows = [(f.page or "/", f.kind, _viewport(f) or "-", f.img) for f in report.findings]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    if rows:
        header = ("page", "kind", "viewport", "image")
        widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)))
    for f, row in zip(report.findings, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, [*widths, 0], strict=True)))
        lines.append(f"    {f.detail}")
        if f.suggested:
            lines.append(f'    sizes="{f.sizes}" -> sizes="{f.suggested}"')
        if f.rule:
            lines.append(f"    from {f.rule}")
    counts = {kind: sum(f.kind == kind for f in report.findings) for kind in KINDS}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no findings"
    lines.append(f"{len(report.pages)} pages audited in {report.seconds:.1f} s: {summary}")
    return lines


def write_json(path: Path, report: Report) -> None:
    atomic_write(path, (json.dumps(report.as_dict(), indent=2) + "\n").encode())


def write_html(path: Path, report: Report) -> None:
    atomic_write(path, html_page(report).encode())


def html_page(report: Report) -> str:
    rows = "\n".join(_row(f) for f in report.findings) or (
        '<tr><td colspan="5">No findings.</td></tr>'
    )
    return _PAGE.format(pages=len(report.pages), count=len(report.findings), rows=rows)


def _row(f: Finding) -> str:
    e = html.escape
    thumb = f'<img src="{e(f.thumbnail)}" alt="">' if f.thumbnail else ""
    fix = ""
    if f.suggested:
        fix = f"<br>sizes: <code>{e(f.sizes or '')}</code> &rarr; <code>{e(f.suggested)}</code>"
    if f.rule:
        fix += f"<br>from <code>{e(f.rule)}</code>"
    viewport = e(_viewport(f)) if f.viewport else ""
    return (
        f"<tr><td>{thumb}</td><td>{e(f.kind)}</td><td>{e(f.page)}<br><code>{e(f.img)}</code>"
        f"</td><td>{viewport}</td><td>{e(f.detail)}{fix}</td></tr>"
    )


def _viewport(f: Finding) -> str:
    v = f.viewport
    return f"{v.width}x{v.height}@{v.dpr}x" if v else ""


_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>imgpipe audit</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 1rem; }}
  table {{ border-collapse: collapse; }}
  td, th {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top; }}
  td img {{ max-width: 160px; max-height: 120px; }}
  code {{ word-break: break-all; }}
</style></head>
<body>
<h1>imgpipe audit</h1>
<p>{pages} pages, {count} findings.</p>
<table>
<tr><th>image</th><th>kind</th><th>page and image</th><th>viewport</th><th>what and how to fix it</th></tr>
{rows}
</table>
</body>
</html>
"""
