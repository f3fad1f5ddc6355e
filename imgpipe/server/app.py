"""The HTTP endpoint: ImageOptim-API-compatible `POST /<user>/<options>/<image URL>`.

One route takes every path, because the image URL is read from the raw request path
(apipath.py). A request goes: Host check -> user -> options and URL (all problems reported
together, 400) -> a work-queue slot (503 when full) -> fetch or upload -> engine in the thread
pool under `timeout=` -> the image, with warnings as `Warning: 199` headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from .. import options as option_language
from ..errors import ImgpipeError, OptionError, Problem
from ..formats import FORMATS
from ..model import Limits, Rendition
from ..options import Recipe
from . import apipath
from .fetch import Fetcher, FetchError, Resolver, system_resolver
from .netguard import AddressPolicy
from .responses import error_response, help_page, warning_value
from .settings import ServerConfig
from .upload import FRAMING_ALLOWANCE, boundary_of, file_field, read_body
from .workqueue import QueueFull, WorkQueue

log = logging.getLogger("imgpipe.server")

Optimizer = Callable[..., Rendition]  # imgpipe.api.optimize(source, recipe, *, limits)


class RequestError(ImgpipeError):
    """The request is unusable; the first problem's code decides the status."""


def _problem(code: str, message: str, where: str = "") -> RequestError:
    return RequestError(Problem(code=code, message=message, where=where))


def _default_optimizer(
    source: bytes | Path, options: str | Recipe, *, limits: Limits | None = None
) -> Rendition:
    from ..api import optimize  # the engine: imported on first use, it loads libvips

    return optimize(source, options, limits=limits)


def create_app(
    config: ServerConfig,
    *,
    optimizer: Optimizer | None = None,
    resolver: Resolver = system_resolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The ASGI app. `resolver` and `transport` are seams for tests (fake DNS, tripwires)."""
    server = _Server(config, optimizer or _default_optimizer)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        server.fetcher = Fetcher(
            AddressPolicy.from_strings(config.allow_nets),
            max_bytes=config.max_bytes,
            timeout=config.fetch_timeout,
            max_redirects=config.max_redirects,
            resolver=resolver,
            transport=transport,
        )
        try:
            yield
        finally:
            await server.fetcher.aclose()
            server.queue.shutdown()

    async def every_path(scope, receive, send) -> None:
        response = await server.handle(Request(scope, receive))
        await response(scope, receive, send)

    # No route patterns: Starlette's `{rest:path}` does not match a path holding a newline
    # (`/%0d%0a...`), which then got Starlette's plain-text 404 instead of the API's answer.
    app = Starlette(lifespan=lifespan)
    app.router.default = every_path
    app.state.server = server
    return app


class _Server:
    def __init__(self, config: ServerConfig, optimizer: Optimizer):
        self.config = config
        self.optimizer = optimizer
        self.queue = WorkQueue(config.workers, config.queue)
        self.fetcher: Fetcher | None = None  # made in the lifespan, on the server's loop
        self.hosts = config.host_names()
        self.limits = Limits(max_bytes=config.max_bytes)

    async def handle(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        path = apipath.split(raw, request.scope.get("query_string", b""))
        try:
            self._check_host(request)
            if request.method != "POST":
                return self._explain(request, path, raw)
            return await self._process(request, path)
        except ImgpipeError as error:
            log.info("%s %s -> %s", request.method, request.url.path, error)
            return error_response(error)
        except Exception:  # a bug: say so in the API's format, keep the details in the log
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(
                _problem(
                    "internal-error",
                    "imgpipe serve failed on this request; the server log has the details",
                ),
                500,
            )

    def _check_host(self, request: Request) -> None:
        host = request.headers.get("host", "")
        if host.startswith("["):  # [::1]:8000
            name = host[1:].split("]", 1)[0].lower()
        else:
            name = host.split(":", 1)[0].lower()
        if "*" not in self.hosts and name not in self.hosts:
            raise _problem(
                "bad-host",
                f"Host {host!r} is not served here; expected one of: "
                f"{', '.join(sorted(self.hosts))}; to accept it, start imgpipe serve with "
                f"--allowed-host {name or 'NAME'}",
                "Host",
            )

    def _check_user(self, user: str | None) -> None:
        # compare_digest over every user: the answer time does not tell which prefix matched.
        given = (user or "").encode()
        known = [hmac.compare_digest(given, u.encode()) for u in self.config.users]
        if not user or not any(known):
            what = "no user name" if not user else f"the user {user!r} is not known here"
            raise _problem(
                "unknown-user",
                f"{what}; the URL starts with /<user>/ as given to imgpipe serve --user",
                "user",
            )

    def _validate(self, request: Request, path: apipath.ApiPath) -> Recipe:
        """Options and URL problems together, so one 400 lists everything to fix."""
        problems: list[Problem] = []
        recipe = None
        if path.options is None:
            problems.append(
                Problem(
                    "missing-options",
                    "the options are missing; put e.g. "
                    "'full' or '160x100,crop' after the user name",
                    "options",
                )
            )
        else:
            try:
                recipe = option_language.parse(path.options)
            except OptionError as error:
                problems += error.problems
        if path.url is not None:
            try:
                assert self.fetcher is not None
                self.fetcher.check(path.url)
            except FetchError as error:
                problems += error.problems
        elif boundary_of(request.headers.get("content-type", "")) is None:
            problems.append(
                Problem(
                    "missing-url",
                    "expected an image URL after the options, "
                    "or a multipart/form-data upload in the field 'file'",
                    "image URL",
                )
            )
        if problems or recipe is None:
            raise RequestError(problems)
        return recipe

    async def _process(self, request: Request, path: apipath.ApiPath) -> Response:
        self._check_user(path.user)
        recipe = self._validate(request, path)
        try:
            slot = self.queue.slot(request.client.host if request.client else "")
        except QueueFull as full:
            raise _problem("busy", f"{full}; retry shortly") from None
        with slot:
            cache_control = None
            if path.url is not None:
                assert self.fetcher is not None
                fetched = await self.fetcher.fetch(path.url)
                source, cache_control = fetched.data, fetched.cache_control
            else:
                source = await self._upload(request)
            try:
                job = functools.partial(self.optimizer, source, recipe, limits=self.limits)
                rendition = await slot.run(job, timeout=recipe.timeout)
            except TimeoutError:
                raise _problem(
                    "timeout",
                    f"optimizing took longer than timeout={recipe.timeout:g} seconds",
                    "timeout",
                ) from None
        return self._image_response(recipe, rendition, cache_control)

    async def _upload(self, request: Request) -> bytes:
        limit = self.config.max_bytes
        try:
            # A client that trickles its body holds a work slot: give it the fetch budget.
            async with asyncio.timeout(self.config.fetch_timeout):
                body = await read_body(
                    request.stream(),
                    request.headers.get("content-length"),
                    limit + FRAMING_ALLOWANCE,
                )
        except TimeoutError:
            raise _problem(
                "upload-timeout",
                f"the upload was not received within {self.config.fetch_timeout:g} seconds",
                "upload",
            ) from None
        # Off the event loop: parsing a body of up to max_bytes is CPU work that would stall
        # every other request (and the part count is capped in file_field).
        source = await asyncio.to_thread(file_field, body, request.headers.get("content-type", ""))
        if len(source) > limit:
            raise _problem(
                "too-large",
                f"the upload is {len(source)} bytes; the limit is {limit} bytes",
                "upload",
            )
        return source

    def _image_response(
        self, recipe: Recipe, rendition: Rendition, cache_control: str | None
    ) -> Response:
        response = Response(rendition.data, media_type=FORMATS[rendition.format].mime)
        if cache_control:
            response.headers["Cache-Control"] = cache_control
        seen = set()
        for problem in (*recipe.warnings, *rendition.warnings):
            if (problem.code, problem.message) not in seen:
                seen.add((problem.code, problem.message))
                response.headers.append("Warning", warning_value(problem))
        return response

    def _explain(self, request: Request, path: apipath.ApiPath, raw: bytes) -> Response:
        if path.is_root and request.method in ("GET", "HEAD"):
            return help_page(str(request.base_url), None, None, status=200)
        if path.options is None:
            report = "missing: put e.g. 'full' or '160x100,crop' after the user name"
        else:
            try:
                recipe = option_language.parse(path.options)
                report = f"valid; canonical form: {recipe.canonical()}"
                report += "".join(f"\nwarning: {w}" for w in recipe.warnings)
            except OptionError as error:
                report = "\n".join(f"error: {p}" for p in error.problems)
        # Shown from the raw path: the decoded one would turn a URL's own %2F into '/'.
        shown = str(request.base_url).rstrip("/") + raw.decode("latin-1")
        if request.url.query:
            shown += "?" + request.url.query
        return help_page(shown, report, path.url, status=405)
