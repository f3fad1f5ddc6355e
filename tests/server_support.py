"""Real servers on loopback for the `imgpipe serve` tests (helpers only; no tests here).

- `ServerThread`: the imgpipe app under uvicorn in a thread, on a free port of 127.0.0.1.
- `Origin`: a threaded HTTP origin on a chosen loopback address (127.0.0.2 in the tests, the
  only allow-listed one), with routes for images, statuses, redirects, big and slow bodies.
- `Listener`: a socket that only counts accepted connections: the proof that a refused URL
  never reached its target.
- `Tripwire`: an httpx transport that records every request and lets through only loopback
  addresses, so a guard bug can never send a packet to a private or public network.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from imgpipe.server.connections import uvicorn_config

ORIGIN_IP = "127.0.0.2"
ALLOW = (f"{ORIGIN_IP}/32",)


def serve_command(user: str, *options: str) -> tuple[list[str], int]:
    """The `imgpipe serve` command line on a free port of 127.0.0.1, and that port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    main = "from imgpipe.cli import main; main()"
    return [
        sys.executable,
        "-c",
        main,
        "serve",
        "--port",
        str(port),
        "--user",
        user,
        *options,
    ], port


def png(width: int, height: int) -> bytes:
    """A small RGB gradient PNG, made without any image library."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 90))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return struct.unpack(">II", data[16:24])


class ServerThread:
    """`with ServerThread(app) as s:` serves on http://127.0.0.1:{s.port}."""

    def __init__(self, app, host: str = "127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        # The settings `imgpipe serve` runs with (connection cap, head deadline).
        config = uvicorn_config(app, app.state.server.config, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class Origin:
    """An origin web server on `ip`. Routes (GET):

    /img/WxH.png          a WxH PNG          /status/N        answers HTTP N
    /redirect?to=U&code=C redirect to U      /loop            redirects to itself forever
    /big?n=N              N bytes, no length /cached.png      a PNG with Cache-Control
    /slow?s=S             sleeps S seconds   /garbage         bytes that are no image
    /gzip.png             a gzip-encoded PNG /gzip-bomb?n=N   gzip that inflates to N bytes
    anything else: 404. Every request target is recorded raw in `paths`.
    """

    def __init__(self, ip: str = ORIGIN_IP, tls: ssl.SSLContext | None = None):
        origin = self
        self.paths: list[str] = []
        self.sni: list[str | None] = []
        self.images: dict[tuple[int, int], bytes] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                origin.paths.append(self.path)
                origin.route(self)

        self.httpd = ThreadingHTTPServer((ip, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://{ip}:{self.port}"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.base = f"https://{ip}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Origin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def image(self, width: int, height: int) -> bytes:
        if (width, height) not in self.images:
            self.images[(width, height)] = png(width, height)
        return self.images[(width, height)]

    def route(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        headers: dict[str, str] = {}
        body = b""
        status = 200
        if path.startswith("/img/") and path.endswith(".png"):
            w, _, hgt = path[5:-4].partition("x")
            body, headers["Content-Type"] = self.image(int(w), int(hgt)), "image/png"
        elif path == "/cached.png":
            body = self.image(40, 30)
            headers["Cache-Control"] = "public, max-age=3600"
        elif path.startswith("/status/"):
            status, body = int(path[8:]), b"origin says no"
        elif path == "/redirect":
            status = int(query.get("code", "302"))
            headers["Location"] = query["to"]
        elif path == "/loop":
            status, headers["Location"] = 302, "/loop"
        elif path == "/garbage":
            body = b"this is not an image at all" * 10
        elif path == "/big":
            return self._stream(h, int(query["n"]))
        elif path == "/slow":
            time.sleep(float(query["s"]))
            body = self.image(10, 10)
        elif path == "/gzip.png":  # a server that compresses even images
            body, headers["Content-Encoding"] = gzip.compress(self.image(30, 20)), "gzip"
        elif path == "/gzip-bomb":  # a few KiB on the wire, n bytes once inflated
            body = gzip.compress(b"\0" * int(query["n"]), compresslevel=9)
            headers["Content-Encoding"] = "gzip"
        elif path == "/a%2Fb.png":  # a name with an encoded slash, which must arrive encoded
            body = self.image(20, 10)
        else:
            status, body = 404, b"not here"
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def _stream(h: BaseHTTPRequestHandler, n: int) -> None:
        """n bytes without Content-Length: only a streaming limit can stop it early."""
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        block = b"\0" * 65536
        try:
            while n > 0:
                h.wfile.write(block[: min(n, len(block))])
                n -= len(block)
        except OSError:
            pass  # the fetcher hung up at its limit, as it should
        h.close_connection = True


class Listener:
    """Listens on (ip, port) and counts accepted connections; nothing else."""

    def __init__(self, ip: str = "127.0.0.1", port: int = 0):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


class Tripwire(httpx.AsyncBaseTransport):
    """Records every request that reached the transport; only loopback ones go out."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport(retries=0)
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.seen.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpx.ConnectError(f"tripwire: refused to leave loopback for {host}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def self_signed(name: str, directory) -> tuple[str, str] | None:
    """(cert, key) files for `name`, made with the openssl command; None without it."""
    cert, key = f"{directory}/{name}.crt", f"{directory}/{name}.key"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "1",
                "-subj",
                f"/CN={name}",
                "-addext",
                f"subjectAltName=DNS:{name}",
            ],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return cert, key


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
