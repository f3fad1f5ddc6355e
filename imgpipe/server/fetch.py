"""Fetch an image from the web for the server, safely (no SSRF, bounded size and time).

Every hop is: parse the URL ourselves, resolve the host ourselves, check *every* resolved
address against the AddressPolicy, then connect to the checked address (the URL handed to
httpx carries the IP; the Host header and TLS SNI carry the name). httpx never resolves a name
and never follows a redirect on its own, so there is no second lookup to rebind and no hop
that skips the check. Keep-alive is off: a pooled connection is keyed by IP, and reusing a TLS
connection verified for one name to talk to another name at the same IP would skip the
certificate check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import httpx

from ..errors import ImgpipeError, Problem
from .netguard import AddressPolicy, HostError, IPAddress, parse_host

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "imgpipe-serve"
# Characters kept as they are when re-quoting a path: every reserved character and '%', so
# escapes the URL already has (a %2F inside a name) reach the origin unchanged.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class FetchError(ImgpipeError):
    """Fetching the source failed; the code decides the HTTP status (responses.STATUS)."""


@dataclass(frozen=True)
class Fetched:
    data: bytes
    url: str  # the URL the bytes finally came from, after redirects
    cache_control: str | None


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect and what to call it."""

    url: str
    scheme: str
    host: str  # the normalised name or address, for resolving, Host and SNI
    port: int
    path: str  # raw path and query, re-quoted only where the URL had unsafe characters
    literal: IPAddress | None  # set when the host was an address, in any spelling


def _fail(code: str, message: str) -> FetchError:
    return FetchError(Problem(code=code, message=message, where="image URL"))


def check_url(url: str) -> Target:
    """Parse an absolute http(s) URL, or raise FetchError saying what is wrong with it."""
    if _UNSAFE_CHARS.search(url):
        raise _fail("bad-url", f"{url!r} contains spaces, control characters or backslashes")
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError as exc:  # an unclosed [ for IPv6, for one
        raise _fail("bad-url", f"{url!r} is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "no scheme"
        raise _fail(
            "unsupported-scheme", f"{url!r} has {shown}; expected an http:// or https:// URL"
        )
    if "@" in parts.netloc:
        raise _fail(
            "url-credentials",
            f"{url!r} carries a user name or password; imgpipe "
            "serve only fetches public URLs without credentials",
        )
    try:
        port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
        host = (parts.hostname or "").encode("idna").decode("ascii")
        literal_or_name = parse_host(host)
    except (ValueError, UnicodeError) as exc:
        detail = str(exc) if isinstance(exc, HostError) else f"invalid host or port ({exc})"
        raise _fail("bad-url", f"{url!r}: {detail}") from exc
    if port == 0:
        raise _fail("bad-url", f"{url!r}: port 0 is not a port")
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    literal = None if isinstance(literal_or_name, str) else literal_or_name
    # The normalised form is what gets resolved and sent as Host: `LocalHost.` is `localhost`,
    # and an address spelled `0x7f.1` goes out as 127.0.0.1.
    return Target(
        url=url, scheme=scheme, host=str(literal_or_name), port=port, path=path, literal=literal
    )


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [ipaddress.ip_address(info[4][0]) for info in infos]


class Fetcher:
    """Downloads source images under an AddressPolicy, a size limit and a time limit."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_bytes: int,
        timeout: float = 30.0,
        max_redirects: int = 5,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.resolver = resolver
        self._client = httpx.AsyncClient(
            # trust_env=False: an HTTP(S)_PROXY variable would make the proxy, not the
            # checked address, the thing we connect to.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            transport=transport
            or httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_keepalive_connections=0), retries=0
            ),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> Fetched:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url)
        except TimeoutError:
            raise _fail(
                "fetch-timeout", f"fetching {url!r} took longer than {self.timeout:g} s"
            ) from None

    async def _follow(self, url: str) -> Fetched:
        target = check_url(url)
        for _hop in range(self.max_redirects + 1):
            addresses = await self._addresses(target)
            response = await self._open(target, addresses)
            try:
                status = response.status_code
                location = response.headers.get("location")
                if status in REDIRECTS and location:
                    target = check_url(urljoin(target.url, location))
                    continue
                _check_status(status, target.url)
                data = await self._read(response, target.url)
                return Fetched(data, target.url, response.headers.get("cache-control"))
            finally:
                await response.aclose()
        raise _fail(
            "too-many-redirects", f"{url!r} redirected more than {self.max_redirects} times"
        )

    async def _addresses(self, target: Target) -> list[IPAddress]:
        """Resolve and check; refuse if ANY address is blocked (a mixed answer is a trick)."""
        if target.literal is not None:
            addresses = [target.literal]
        else:
            try:
                addresses = await self.resolver(target.host, target.port)
            except (OSError, UnicodeError) as exc:
                raise _fail(
                    "host-not-found", f"the host {target.host!r} of {target.url!r} does not resolve"
                ) from exc
            if not addresses:
                raise _fail("host-not-found", f"the host {target.host!r} has no address")
        self._refuse_blocked(target, addresses)
        return addresses

    def _refuse_blocked(self, target: Target, addresses: list[IPAddress]) -> None:
        for address in addresses:
            reason = self.policy.refusal(address)
            if reason:
                raise _fail(
                    "blocked-address",
                    f"{target.url!r} leads to {reason}; imgpipe "
                    "serve does not fetch from local or private networks"
                    + self._how_to_allow(address),
                )

    def _how_to_allow(self, address: IPAddress) -> str:
        """The flag that would let this address through, if any can (metadata never)."""
        net = ipaddress.ip_network(address)
        opened = replace(self.policy, allow=(*self.policy.allow, net))
        if opened.refusal(address) is not None:
            return ""
        return f"; to fetch from it (local testing), start imgpipe serve with --allow-net {net}"

    def check(self, url: str) -> Target:
        """All that is known without DNS: the URL's form, and the policy for address hosts.

        Lets the server refuse such URLs before they take a work slot; fetch() checks again.
        """
        target = check_url(url)
        if target.literal is not None:
            self._refuse_blocked(target, [target.literal])
        return target

    async def _open(self, target: Target, addresses: list[IPAddress]) -> httpx.Response:
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if ":" not in target.host else f"[{target.host}]"
        if target.port != default_port:
            host_header += f":{target.port}"
        headers = {
            "Host": host_header,
            "User-Agent": USER_AGENT,
            "Accept": "image/*,*/*;q=0.5",
            # Bodies are read raw and decoded here under the size limit (see _read).
            "Accept-Encoding": "gzip, deflate",
        }
        # SNI and certificate checks use the name; the socket goes to the checked address.
        extensions = {"sni_hostname": target.host} if target.literal is None else {}
        last_error: Exception | None = None
        for address in addresses:
            url = httpx.URL(
                scheme=target.scheme,
                host=str(address),
                port=target.port,
                raw_path=target.path.encode("ascii"),
            )
            request = self._client.build_request("GET", url, headers=headers, extensions=extensions)
            try:
                return await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc  # try the next checked address
            except httpx.TimeoutException as exc:
                raise _fail("fetch-timeout", f"{target.url!r} did not answer in time") from exc
            except httpx.HTTPError as exc:
                raise _fail("origin-error", f"{target.url!r} failed: {exc}") from exc
        raise _fail("origin-unreachable", f"cannot connect to {target.url!r}: {last_error}")

    async def _read(self, response: httpx.Response, url: str) -> bytes:
        limit = self.max_bytes
        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if declared.isdigit() and int(declared) > limit and encoding == "identity":
            raise _too_large(url, limit)
        decoder = _decoder(encoding, url)
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                if decoder is None:
                    body += chunk
                else:
                    # max_length bounds what one chunk may expand to: no decompression bomb.
                    while chunk and len(body) <= limit:
                        body += decoder.decompress(chunk, limit + 1 - len(body))
                        chunk = decoder.unconsumed_tail
                if len(body) > limit:
                    raise _too_large(url, limit)
        except zlib.error as exc:
            raise _fail("origin-error", f"{url!r} sent a corrupt {encoding} body") from exc
        except httpx.TimeoutException as exc:
            raise _fail("fetch-timeout", f"{url!r} stopped sending data") from exc
        except httpx.HTTPError as exc:
            raise _fail("origin-error", f"reading {url!r} failed: {exc}") from exc
        return bytes(body)


def _decoder(encoding: str, url: str):
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise _fail(
        "origin-error",
        f"{url!r} was sent with Content-Encoding {encoding!r}, which imgpipe serve did not ask for",
    )


def _too_large(url: str, limit: int) -> FetchError:
    return _fail("too-large", f"{url!r} is larger than the limit of {limit} bytes")


def _check_status(status: int, url: str) -> None:
    if 200 <= status < 300:
        return
    if status in (404, 410):
        raise _fail("not-found", f"{url!r} was not found at its origin (HTTP {status})")
    if status in (401, 403):
        raise _fail("origin-forbidden", f"the origin refused access to {url!r} (HTTP {status})")
    raise _fail("origin-error", f"the origin answered {url!r} with HTTP {status}")
