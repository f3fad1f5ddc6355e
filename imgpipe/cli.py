"""The `imgpipe` command: thin click wrappers over library calls (the only click importer)."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="imgpipe")
def main() -> None:
    """Build optimized, responsive images for static sites."""


# Each command below parses arguments, calls one library function, prints.
