"""imgpipe: optimized, responsive images for static sites (libvips, ImageOptim-style options)."""

from .api import optimize

__all__ = ["optimize"]
