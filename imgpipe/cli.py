"""The `imgpipe` command: thin click wrappers over library calls (the only click importer)."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="imgpipe")
def main() -> None:
    """Build optimized, responsive images for static sites."""


# Each command below parses arguments, calls one library function, prints.


@main.command()
@click.argument("options")
@click.argument("source", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", "output", required=True, metavar="OUT",
              help="Where to write the result; '-' for standard output.")
def optimize(options: str, source: str, output: str) -> None:
    """Optimize one image: imgpipe optimize '800x600,crop,format=webp' in.jpg -o out.webp"""
    from .api import optimize as optimize_image
    from .api import write_atomic
    from .errors import ImageError, OptionError

    try:
        rendition = optimize_image(source, options)
    except OptionError as error:
        for problem in error.problems:
            click.echo(f"error[{problem.code}]: {problem.message}", err=True)
        raise SystemExit(2) from None
    except ImageError as error:
        click.echo(f"error[{error.code}]: {error.problems[0].message}", err=True)
        raise SystemExit(1) from None
    for warning in rendition.warnings:
        click.echo(f"warning[{warning.code}]: {warning.message}", err=True)
    if output == "-":
        click.get_binary_stream("stdout").write(rendition.data)
    else:
        try:
            write_atomic(output, rendition.data)
        except OSError as error:
            click.echo(f"error[unwritable]: {output}: cannot write ({error.strerror or error}); "
                       "expected a writable path; check the directory exists", err=True)
            raise SystemExit(1) from None
    click.echo(f"{output}: {rendition.width}x{rendition.height} {rendition.format} "
               f"quality={rendition.quality} {rendition.bytes} bytes", err=True)
