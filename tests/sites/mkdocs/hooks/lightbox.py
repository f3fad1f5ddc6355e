"""A stand-in for lightbox plugins (mkdocs-glightbox): wraps every image in a link to itself,
at the default priority, so imgpipe (priority -100) sees the wrapped `<img>`."""

import re


def on_page_content(html, page, config, files):
    return re.sub(
        r'(<img\b[^>]*\bsrc="([^"]+)"[^>]*>)', r'<a class="glightbox" href="\2">\1</a>', html
    )
