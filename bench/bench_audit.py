"""How long `imgpipe audit` takes on a built site (not a test).

    imgpipe build && python example-site/make_page.py     # once: the example site
    python bench/bench_audit.py [--runs 3] [SITE]          # default: example-site/public

Each run is a whole audit as the command does it: serve the folder, start Chromium, load every
page as a phone and a laptop, sweep the viewport width, judge. Wall time and CPU time (this
process and its children: Playwright's driver and Chromium, counted once they exit) per run,
their median, and how many viewport widths the sweep measured per page (instead of the 2,241 of
a per-pixel sweep). On a shared machine wall time follows the load; CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from imgpipe.audit import audit, browser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="example-site/public", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    widths: list[int] = []
    scan = browser.scan

    def counting(*a, **k):
        result = scan(*a, **k)
        widths.append(len(result.samples))
        return result

    browser.scan = counting
    walls, cpus = [], []
    for run in range(args.runs):
        widths.clear()
        wall, cpu = time.perf_counter(), _cpu()
        report = audit(args.site)
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
        print(
            f"run {run + 1}: {walls[-1]:.1f} s wall, {cpus[-1]:.1f} s CPU, "
            f"{len(report.pages)} pages, {len(report.findings)} findings, "
            f"swept widths per page: {widths}"
        )
    print(
        f"median of {args.runs}: {statistics.median(walls):.1f} s wall, "
        f"{statistics.median(cpus):.1f} s CPU (load average {os.getloadavg()[0]:.1f})"
    )


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
