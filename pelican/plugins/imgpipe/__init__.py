"""Pelican plugin `imgpipe` (a namespace plugin: PLUGINS = ["imgpipe"]). A shim: the plugin
lives in imgpipe.integrations.pelican, so it is tested and versioned with the library."""

from imgpipe.integrations.pelican import register

__all__ = ["register"]
