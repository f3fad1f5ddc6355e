# A small Pelican site for the imgpipe plugin tests (tests override some settings per run).
AUTHOR = "imgpipe"
SITENAME = "imgpipe test blog"
SITEURL = ""
PATH = "content"
OUTPUT_PATH = "output"
CACHE_PATH = "cache"
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
DEFAULT_DATE = (2024, 1, 1)
STATIC_PATHS = ["images", "articles/nested/attached.jpg"]
THEME_TEMPLATES_OVERRIDES = ["templates"]
FEED_ALL_ATOM = None
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None

PLUGINS = ["pelican.plugins.imgpipe"]
IMGPIPE = {"widths": [320, 640], "formats": ["webp", "auto"], "jobs": 2}
