"""Site-generator plugins (MkDocs, Pelican): thin edges that translate their events into calls
to the library. The shared parts are `site` (plugin options → Config, build, publish) and
`rewrite` (plain `<img>` tags → `<picture>`)."""
