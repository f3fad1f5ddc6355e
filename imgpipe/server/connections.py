"""Client connections: a cap below the open-files limit, and a deadline for each request head.

uvicorn closes a keep-alive connection that stays idle after a response, but keeps a connection
that never completes a request head (or sends it one byte at a time) forever, and accepts until
accept() fails with EMFILE. Measured (issue 18): 1,100 idle connections under a 1024 open-files
limit locked out every client and logged 38 MB of tracebacks. So, on top of uvicorn's h11
protocol (the same class whatever else is installed):
- a request head must be complete within `head_timeout` seconds of the connection being ready
  for one (connect, or the previous response sent), else the connection is closed;
- at most `max_connections` connections, a number kept below the open-files limit: a new
  connection over the cap closes the longest-waiting idle one, or when none is idle (all are
  busy with requests) is answered 503 and closed. Idle connections are what get shed; a
  request being served never is.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ImgpipeError, Problem
from .responses import error_response
from .settings import ServerConfig

log = logging.getLogger("imgpipe.server")

# Descriptors the process needs besides client connections: listening sockets, the event loop,
# logs, libraries; plus a fetch socket and a spare for every admitted request (connection_limits).
FD_RESERVE = 64
FLOOR = 16  # connections allowed even under an absurdly low open-files limit
REFUSED_LINGER = 1.0  # seconds a refused connection may take to read its 503


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (what servers commonly do); the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_limits(config: ServerConfig, open_files: int) -> tuple[int, int]:
    """(connection cap, listen backlog) that together stay below `open_files`.

    asyncio accepts up to `backlog` connections in one go before any of them reaches the
    protocol (and the cap check), and the connections shed for them close on the next loop
    turn: so at worst cap + 2 x backlog sockets are open at once, plus the reserve.
    """
    available = open_files - FD_RESERVE - 2 * (config.workers + config.queue)
    backlog = max(1, min(2048, available // 4))
    return max(FLOOR, min(config.max_connections, available - 2 * backlog)), backlog


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the cap and the head deadline (see the module docstring)."""

    max_connections = 1000
    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: Any = None
        self.waiting_since: float | None = None  # for a request head; None while busy
        self._refused = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()
        if len(self.connections) > self.max_connections and not self._shed_idle():
            self._refuse(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: closing with unread data would reset away the 503
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def _watch_head(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._head_timer is None:
            self.waiting_since = self.loop.time()
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
        elif not waiting:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.waiting_since = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def _shed_idle(self) -> bool:
        """Close the connection that has waited longest for a request head; False if none."""
        idle = [
            c
            for c in self.connections
            if c is not self
            and getattr(c, "waiting_since", None) is not None
            and not c.transport.is_closing()
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.waiting_since)
        oldest._stop_head_timer()
        oldest.transport.close()
        return True

    def _refuse(self, transport) -> None:
        self._stop_head_timer()
        self._refused = True
        transport.write(_BUSY)
        if transport.can_write_eof():
            transport.write_eof()  # the client sees the answer end; its EOF closes us
        self.loop.call_later(REFUSED_LINGER, transport.close)


def _busy_bytes() -> bytes:
    """A whole HTTP 503 in the API's error format, sent before reading any request."""
    response = error_response(
        ImgpipeError(Problem("busy", "too many open connections; retry shortly", "connection"))
    )
    head = [b"HTTP/1.1 503 Service Unavailable", b"Connection: close"]
    head += [name + b": " + value for name, value in response.raw_headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


_BUSY = _busy_bytes()


def uvicorn_config(app: Any, config: ServerConfig, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for `app`; call raise_open_files_limit() first to get the most room."""
    cap, backlog = connection_limits(config, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_connections": cap, "head_timeout": config.head_timeout},
    )
    settings: dict[str, Any] = dict(
        host=config.host,
        port=config.port,
        http=protocol,
        log_level="info",
        server_header=False,
        timeout_keep_alive=5,
        backlog=backlog,
    )
    return uvicorn.Config(app, **{**settings, **overrides})
