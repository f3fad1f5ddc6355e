"""The image engine: the only package that imports pyvips.

Contract used by the rest of imgpipe (build, server, plugins):

    source = open_source(path_or_bytes, limits)   # validates: allow-listed loader, limits
    source.info                                   # SourceInfo (size after autorotate, format...)
    source.render(recipe) -> Rendition            # one decode of the source feeds every render

`render` never writes files; callers write `Rendition.data` atomically.
"""
