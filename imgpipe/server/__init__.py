"""`imgpipe serve`: a self-hosted, ImageOptim-API-compatible HTTP endpoint.

Needs the `server` extra (starlette, uvicorn, httpx, python-multipart).
"""

from __future__ import annotations

from .settings import ServerConfig

__all__ = ["ServerConfig", "create_app", "run"]


def create_app(config: ServerConfig, **seams):
    from .app import create_app as _create_app

    return _create_app(config, **seams)


def run(config: ServerConfig) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM and drains requests)."""
    import uvicorn

    from .connections import raise_open_files_limit, uvicorn_config
    from .memory import tune_allocator

    tune_allocator()
    raise_open_files_limit()
    uvicorn.Server(uvicorn_config(create_app(config), config)).run()
