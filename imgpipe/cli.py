"""The `imgpipe` command: thin click wrappers over library calls (the only click importer)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
@click.version_option(package_name="imgpipe")
def main() -> None:
    """Build optimized, responsive images for static sites."""


# Each command below parses arguments, calls one library function, prints.


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--user",
    "users",
    multiple=True,
    required=True,
    envvar="IMGPIPE_USERS",
    help="A user name accepted as /<user>/ (repeatable; env IMGPIPE_USERS, names separated "
    "by commas or spaces).",
)
@click.option(
    "--allow-net",
    "allow_nets",
    multiple=True,
    metavar="CIDR",
    help="Let fetches reach this network despite the SSRF policy "
    "(for local testing, e.g. 127.0.0.0/8).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A Host header name to accept (default: --host and localhost); '*' for any.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=50 * 1024 * 1024,
    show_default=True,
    help="Largest download or upload.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Images processed at once (default: CPU count).",
)
@click.option(
    "--queue",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Requests allowed to wait beyond those; more get 503.",
)
@click.option(
    "--fetch-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds allowed for downloading a source image.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Open client connections (kept below the open-files limit); idle ones are closed first.",
)
def serve(
    host,
    port,
    users,
    allow_nets,
    allowed_hosts,
    max_bytes,
    workers,
    queue,
    fetch_timeout,
    max_connections,
) -> None:
    """Serve an ImageOptim-API-compatible endpoint: POST /<user>/<options>/<image URL>."""
    import importlib.util
    import re

    # click splits IMGPIPE_USERS on spaces only; `a,b` is as natural a list.
    users = tuple(name for value in users for name in re.split(r"[,\s]+", value) if name)
    if not users:
        raise click.BadParameter("expected at least one user name", param_hint="--user")

    missing = [
        m
        for m in ("starlette", "uvicorn", "httpx", "python_multipart")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise click.ClickException(
            f"imgpipe serve needs {', '.join(missing)}: pip install 'imgpipe[server]'"
        )
    from .server import ServerConfig, run
    from .server.netguard import AddressPolicy

    try:
        AddressPolicy.from_strings(allow_nets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-net") from None
    config = ServerConfig(
        users=tuple(users),
        host=host,
        port=port,
        allowed_hosts=tuple(allowed_hosts),
        allow_nets=tuple(allow_nets),
        max_bytes=max_bytes,
        queue=queue,
        fetch_timeout=fetch_timeout,
        max_connections=max_connections,
        **({"workers": workers} if workers else {}),
    )
    click.echo(
        f"imgpipe serve: POST http://{host}:{port}/<user>/<options>/<image URL> "
        f"({len(users)} user(s), {config.workers} workers, queue {queue})",
        err=True,
    )
    if not allowed_hosts and host in ("0.0.0.0", "::"):
        click.echo(
            "imgpipe serve: requests must name this machine as "
            f"{', '.join(sorted(config.host_names()))} in their Host header; to accept other "
            "names (a LAN address, a host name), add --allowed-host NAME",
            err=True,
        )
    run(config)


@main.command()
@click.argument("options")
# A plain string: the engine words a missing, unreadable or non-image file the same way
# (click's own checks answered an unreadable one with exit status 2 and a usage text).
@click.argument("source")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="OUT",
    help="Where to write the result; '-' for standard output.",
)
def optimize(options: str, source: str, output: str) -> None:
    """Optimize one image: imgpipe optimize '800x600,crop' in.jpg -o out.webp

    With no format=, the output's extension chooses the format. An SVG source is drawn
    (rasterised) at the size asked."""
    from .api import for_output, output_name
    from .api import optimize as optimize_image
    from .errors import ImageError, OptionError
    from .files import atomic_write
    from .options import parse

    try:
        recipe = for_output(parse(options), output)
        # By name, as a build does: a `.jpg` holding an SVG is refused like any lying name.
        svg = "rasterize" if source.lower().endswith(".svg") else None
        rendition = optimize_image(source, recipe, svg=svg)
    except OptionError as error:
        _print_problems(error.problems, "error")
        raise SystemExit(error.exit_code) from None
    except ImageError as error:
        _print_problems(error.problems[:1], "error")
        raise SystemExit(error.exit_code) from None
    for warning in rendition.warnings:
        click.echo(f"warning[{warning.code}]: {warning.message}", err=True)
    written = output_name(output, rendition.format)
    if written != output:
        click.echo(
            f"warning[extension-unknown]: {output}: not an extension imgpipe writes; the file "
            f"holds {rendition.format.upper()}: name it {written}",
            err=True,
        )
    if source.lower().endswith(".svg"):
        click.echo(
            f"info: {source}: an SVG is drawn at the size asked (a build publishes SVGs as "
            "they are, unless a rule sets rasterize_svg = true)",
            err=True,
        )
    if output == "-":
        click.echo(rendition.data, nl=False)  # bytes go to the binary stdout
    else:
        try:
            atomic_write(output, rendition.data)
        except OSError as error:
            click.echo(
                f"error[unwritable]: {output}: cannot write ({error.strerror or error}); "
                "expected a writable path; check the directory exists",
                err=True,
            )
            raise SystemExit(1) from None
    click.echo(
        f"{output}: {rendition.width}x{rendition.height} {rendition.format} "
        f"quality={rendition.quality} {rendition.bytes} bytes",
        err=True,
    )


def _load_config(config_path):
    """Load and validate the config; print its warnings; exit 2 on errors."""
    from .config import load
    from .errors import ConfigError

    try:
        config = load(config_path)
    except ConfigError as error:
        _config_failed(error)
    _print_problems(config.warnings, "warning")
    return config


def _config_failed(error) -> None:
    """Print a ConfigError's errors and warnings; exit 2."""
    _print_problems(error.warnings, "warning")
    _print_problems(error.problems, "error")
    raise SystemExit(error.exit_code) from None


def _print_problems(problems, kind: str) -> None:
    for problem in problems:
        click.echo(f"{kind}[{problem.code}]: {problem.message}", err=True)


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: imgpipe.toml, else [tool.imgpipe] in pyproject.toml).",
)
@click.option("--force", is_flag=True, help="Re-render everything, ignoring cached results.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (sources, renditions, cached, to build); write nothing.",
)
@click.option("--no-gc", is_flag=True, help="Keep outputs whose source or rule is gone.")
@click.option(
    "--no-wait",
    is_flag=True,
    help="Fail at once if another build is using the cache dir (default: wait).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Sources in parallel.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write figures, failures and warnings: a page to look at if FILE ends in .html, "
    "else JSON.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when stderr is a terminal), else plain lines.",
)
@click.option(
    "--scheduler",
    envvar="IMGPIPE_SCHEDULER",
    metavar="tcp://HOST:PORT",
    help="Render on this dask.distributed cluster (env IMGPIPE_SCHEDULER; config key "
    "`scheduler`); needs remote_cache.",
)
def build(
    config_path, force, dry_run, no_gc, no_wait, jobs, report_path, progress, scheduler
) -> None:
    """Build every rendition the rules ask for, the manifest and HTML snippets."""
    import os
    import sys

    from . import build as builder
    from . import report
    from .config import with_scheduler
    from .errors import ClusterError, ConfigError, StorageError
    from .lock import BuildLocked

    config = _load_config(config_path)
    try:
        if scheduler:
            config = with_scheduler(config, scheduler)
        if dry_run:
            for line in report.plan_lines(builder.dry_run(config, force=force)):
                click.echo(line)
            return
        bar = progress if progress is not None else sys.stderr.isatty()
        events = report.TerminalEvents() if bar else report.PlainEvents()
        try:
            summary = builder.build(
                config,
                force=force,
                gc=not no_gc,
                wait=not no_wait,
                jobs=jobs,
                events=events,
                processes=True,  # the `imgpipe` script is guarded (build.build)
            )
        finally:
            if bar:
                events.close()
    except ConfigError as error:
        _config_failed(error)
    except BuildLocked as error:
        click.echo(f"error[locked]: {error}", err=True)
        raise SystemExit(1) from None
    except (StorageError, ClusterError) as error:  # remote-cache trouble is a StorageError
        _print_problems(error.problems, "error")
        raise SystemExit(error.exit_code) from None
    for line in report.summary_lines(summary):
        click.echo(line, err=not line[0].isdigit())  # the totals line goes to stdout
    if report_path:
        report.write_report(report_path, summary, config)
    for page in {config.report, report_path} - {None}:
        click.echo(f"report: {os.path.relpath(page)}", err=True)
    if not summary.ok:
        raise SystemExit(1)


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: imgpipe.toml, else [tool.imgpipe] in pyproject.toml).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Sources in parallel.")
@click.option(
    "--debounce",
    type=click.FloatRange(min=0.01),
    default=0.2,
    show_default=True,
    help="Seconds without events before a rebuild starts.",
)
@click.option(
    "--rescan",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between checks for changes whose events were lost.",
)
def watch(config_path, jobs, debounce, rescan) -> None:
    """Build, then rebuild what changes (sources, config, templates) until Ctrl-C."""
    import os
    import signal
    import threading
    import time

    from .errors import ConfigError
    from .watch import Watcher

    def echo(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

    # Ctrl-C and `kill` set a flag rather than raise KeyboardInterrupt: an exception raised
    # while this thread waits in `Thread.join` makes Python 3.11 mark the watcher's thread as
    # finished while it still runs (threading._wait_for_tstate_lock releases the lock that
    # thread holds), so the process exited mid-write and left a temp file behind.
    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        if stopping.is_set():  # asked twice: stop now (the next build sweeps any temp file)
            os._exit(128 + signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    watcher = Watcher(config_path, log_line=echo, jobs=jobs, debounce=debounce, rescan=rescan)
    try:
        watcher.start()
    except ConfigError as error:
        _config_failed(error)
    echo(f"watching {watcher.config.source} and {watcher.config.path} (Ctrl-C to stop)")
    try:
        # Rounds run on the watcher's thread; we only wait here.
        while not stopping.wait(0.2) and not watcher.join(0):
            pass
        if stopping.is_set():
            echo("stopping: finishing the source being written (Ctrl-C again to stop at once)...")
    finally:
        watcher.stop()
    echo("stopped")


@main.command()
@click.argument("path", default="imgpipe.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path, force) -> None:
    """Write a commented starter imgpipe.toml."""
    from .starter import starter_text

    if path.exists() and not force:
        click.echo(f"error[exists]: {path} already exists; use --force to overwrite it", err=True)
        raise SystemExit(1)
    path.write_text(starter_text())
    click.echo(f"wrote {path}; edit it, then run `imgpipe check` and `imgpipe build`")


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: imgpipe.toml, else [tool.imgpipe] in pyproject.toml).",
)
def check(config_path) -> None:
    """Validate the config and every option string; list matched sources. Builds nothing."""
    from .check import check as check_sources
    from .errors import ConfigError
    from .image_data import unknown_images
    from .report import issue_line

    config = _load_config(config_path)
    try:
        sources, skipped, warnings = check_sources(config)
    except ConfigError as error:
        _config_failed(error)
    for relpath, labels in sources:
        click.echo(f"{relpath}: {', '.join(labels)}")
    for s in skipped:
        click.echo(issue_line(s.issue(), "error" if s.failed else "warning"), err=True)
    for warning in warnings:
        click.echo(issue_line(warning, "warning"), err=True)
    _print_problems(unknown_images(config.images, (rel for rel, _labels in sources)), "warning")
    count = sum(len(labels) for _rel, labels in sources)
    click.echo(f"config ok: {len(config.rules)} rules, {len(sources)} sources, {count} renditions")
    if any(s.failed for s in skipped):
        raise SystemExit(1)


@main.command()
@click.argument("site")
@click.option(
    "--page",
    "pages",
    multiple=True,
    metavar="PATH",
    help="Audit only this page (site-relative, e.g. index.html; repeatable). Default: all.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write {"pages": N, "findings": [...]} to FILE.',
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a report with a thumbnail per finding to FILE.",
)
@click.option(
    "--allow",
    "allowed",
    multiple=True,
    metavar="KIND",
    help="Do not fail on findings of this kind (repeatable).",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The imgpipe config that built the site, to name the rule behind a `sizes` "
    "(default: imgpipe.toml, else [tool.imgpipe] in pyproject.toml, when present).",
)
@click.option(
    "--manifest",
    "manifests",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An imgpipe manifest of the site not published with it (MkDocs: "
    ".imgpipe-cache/site/imgpipe-manifest.json); repeatable.",
)
def audit(site, pages, json_path, html_path, allowed, config_path, manifests) -> None:
    """Check a built site's images in headless Chromium: imgpipe audit public/ (or a URL)."""
    from . import audit as auditing
    from .errors import closest

    for kind in allowed:
        if kind not in auditing.KINDS:
            guess = closest(kind, auditing.KINDS)
            raise click.BadParameter(
                f"{kind!r} is not a kind; expected one of {', '.join(auditing.KINDS)}"
                + (f"; did you mean {guess!r}?" if guess else ""),
                param_hint="--allow",
            )
    config = _audit_config(config_path)
    try:
        report = auditing.audit(
            site,
            pages,
            config,
            progress=lambda line: click.echo(line, err=True),
            manifests=manifests,
        )
    except auditing.AuditError as error:
        click.echo(f"error[audit]: {error}", err=True)
        raise SystemExit(2) from None
    from .audit.report import table_lines, write_html, write_json

    for line in table_lines(report):
        click.echo(line)
    if json_path:
        write_json(json_path, report)
    if html_path:
        write_html(html_path, report)
    if report.failing(allowed):
        raise SystemExit(1)


def _audit_config(config_path):
    """The config for naming rules: given, else the one in the current directory, if any.
    Without --config a config that does not load is only a warning: the audit needs none."""
    from .config import load
    from .errors import ConfigError

    try:
        return load(config_path)
    except ConfigError as error:
        if config_path:
            _config_failed(error)
        if error.code != "no-config":
            _print_problems(error.problems[:1], "warning")
        return None
