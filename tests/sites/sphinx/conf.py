# The Sphinx test site (tests/test_sphinx.py): images are made in img/ by tests/sites.
project = "imgpipe test"
extensions = ["imgpipe.integrations.sphinx", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
imgpipe = {
    "widths": [160, 320],
    "formats": ["webp", "auto"],
    "sizes": "(min-width: 60rem) 40rem, 100vw",
}
