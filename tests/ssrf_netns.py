"""Run the server's fetch code against URL forms inside a private network namespace.

Started by tests/test_ssrf_netns.py as `unshare -n python ssrf_netns.py` (root): the new
namespace has only `lo`, so no packet can reach a real network even if the code under test is
wrong. Every IPv4 and IPv6 address is then routed to `lo` (`ip route add local default`), and
one listener on `[::]` per port counts each connection with its destination address: the
metadata address, private and link-local ones, "public" ones alike.

stdin: {"allow": [CIDR, ...], "urls": [URL, ...]}
stdout: [{"url", "encoding", "result": "ok" | problem code, "connections": [address, ...]}]
Each URL is tried in both encodings the server accepts: typed into the path, and
percent-encoded as one segment (the official PHP client's form), through apipath.split.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from imgpipe.server import apipath
from imgpipe.server.fetch import Fetcher, FetchError
from imgpipe.server.netguard import AddressPolicy

PORTS = (80, 443, 8080)
# Fake DNS: names for the tricks that need a resolver.
DNS = {
    "metadata.google.internal": ["169.254.169.254"],
    "mapped-metadata.example": ["::ffff:169.254.169.254"],
    "nat64-metadata.example": ["64:ff9b::a9fe:a9fe"],
    "intranet.example": ["10.0.0.7"],
    "v6private.example": ["fd12:3456::1"],
    "linklocal6.example": ["fe80::1"],
    "mixed.example": ["8.8.8.8", "10.0.0.7"],
    "public.example": ["8.8.8.8"],
}

connections: list[str] = []  # destination address of every accepted connection
_lock = threading.Lock()


def isolate() -> None:
    """Refuse to run outside a fresh namespace, then route every address to `lo`."""
    names = [name for _index, name in socket.if_nameindex()]
    if names != ["lo"]:
        sys.exit(f"ssrf_netns.py must run in a new network namespace; interfaces: {names}")
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo"],
        ["ip", "-6", "route", "add", "local", "::/0", "dev", "lo"],
    ):
        subprocess.run(command, check=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.end_headers()
            return
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class CountingServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too
        super().server_bind()

    def get_request(self):
        conn, peer = super().get_request()
        destination = ipaddress.ip_address(conn.getsockname()[0])
        if destination.ipv4_mapped:  # an IPv4 connection on the dual-stack socket
            destination = destination.ipv4_mapped
        with _lock:
            connections.append(str(destination))
        return conn, peer


async def resolve(host: str, port: int):
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "no such name in the test's DNS")
    return [ipaddress.ip_address(a) for a in DNS[host]]


def encodings(url: str) -> dict[str, bytes]:
    return {
        "raw": f"/u/full/{url}".encode("latin-1"),
        "encoded": f"/u/full/{quote(url, safe='')}".encode("ascii"),
    }


async def run(allow: list[str], urls: list[str]) -> list[dict]:
    fetcher = Fetcher(
        AddressPolicy.from_strings(allow),
        max_bytes=1 << 16,
        timeout=3,
        max_redirects=2,
        resolver=resolve,
    )
    results = []
    try:
        for url in urls:
            for encoding, raw in encodings(url).items():
                path, _, query = raw.partition(b"?")
                split = apipath.split(path, query)
                with _lock:
                    before = len(connections)
                try:
                    assert split.url is not None, raw
                    fetcher.check(split.url)  # what the server does before taking a slot
                    await fetcher.fetch(split.url)
                    result = "ok"
                except FetchError as error:
                    result = error.code
                with _lock:
                    seen = connections[before:]
                results.append(
                    {"url": url, "encoding": encoding, "result": result, "connections": seen}
                )
    finally:
        await fetcher.aclose()
    return results


def main() -> None:
    request = json.load(sys.stdin)
    isolate()
    servers = [CountingServer(("::", port), Handler) for port in PORTS]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    results = asyncio.run(run(request["allow"], request["urls"]))
    for server in servers:
        server.shutdown()
    json.dump({"results": results, "total_connections": len(connections)}, sys.stdout)


if __name__ == "__main__":
    main()
