"""Which addresses the server may fetch from: the SSRF policy, as one table and one check.

The check runs on the *resolved* address of every connection (each redirect hop included), and
the fetcher then connects to exactly the address that was checked, so a name that resolves
differently the second time (DNS rebinding) cannot slip through.

Host spelling tricks are normalised the way browsers and libc's inet_aton read them: `2130706433`,
`0177.0.0.1`, `0x7f.1`, `127.1` are all 127.0.0.1, so they are checked as such rather than
being sent to a resolver that would read them the same way after the check.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never fetched, whatever the allow-list says: cloud metadata and credential services hand out
# secrets. Checked on the address and on every IPv4 address it embeds.
METADATA = {
    ipaddress.ip_address(a): why
    for a, why in (
        ("169.254.169.254", "the cloud metadata service"),
        ("fd00:ec2::254", "the cloud metadata service"),
        ("100.100.100.200", "the cloud metadata service"),
        ("169.254.170.2", "the container credentials service"),  # AWS ECS
        ("169.254.170.23", "the container credentials service"),  # AWS EKS Pod Identity
        ("fd00:ec2::23", "the container credentials service"),
    )
}

# Ranges that are never a public web server, with the reason shown in the error message.
# `is_global` below catches anything IANA adds later; this table is for readable reasons and
# for ranges older Pythons do not mark (CGNAT, NAT64 and 6to4 are decided by what they embed).
BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo tunnel address"),
        ("2001:db8::/32", "a documentation address"),
    )
)

# IPv6 forms whose last 32 bits are the IPv4 address a packet finally reaches (RFC 6052 NAT64
# well-known prefix, RFC 2765 IPv4-translated, deprecated IPv4-compatible). `ipaddress` has
# properties for the mapped, 6to4 and Teredo forms only.
_LAST_32_BITS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("::/96"),
)
# RFC 8215 local-use NAT64: the site picks the prefix length (48..96), so the IPv4 address may sit
# at any RFC 6052 position; every position that fits the address's zero bits is a candidate.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_RFC6052_BYTES = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12))  # prefix /48, /56, /64

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class HostError(ValueError):
    """The host part of a URL is not a usable host name or address."""


@dataclass(frozen=True)
class AddressPolicy:
    """Block everything that is not a public unicast address, except explicit allow-listed nets.

    `allow` exists for local testing (`--allow-net 127.0.0.0/8`); metadata addresses stay
    blocked even then.
    """

    allow: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def from_strings(cls, nets: tuple[str, ...] | list[str]) -> AddressPolicy:
        return cls(allow=tuple(ipaddress.ip_network(n, strict=False) for n in nets))

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be fetched from, or None when it may.

        Order matters: first unwrap every IPv4 address the IPv6 form embeds (the packet's real
        destination), then metadata (never allowed), then the allow-list. Checking the
        allow-list first let `--allow-net ::/0` open `[::ffff:169.254.169.254]`.
        """
        address = _unscoped(address)
        inner = embedded_ipv4(address)
        for reached in (address, *inner):
            if reached in METADATA:
                return _said(address, reached, METADATA[reached])
        for reached in inner:
            why = self._why_blocked(reached)
            if why:
                return _said(address, reached, why)
        if inner and not (isinstance(address, ipaddress.IPv6Address) and address.teredo):
            return None  # only another spelling of an IPv4 address that passed
        why = self._why_blocked(address)  # Teredo: the tunnel itself is judged too
        return _said(address, address, why) if why else None

    def _why_blocked(self, address: IPAddress) -> str | None:
        if any(address in net for net in self.allow if net.version == address.version):
            return None
        for net, why in BLOCKED:
            if net.version == address.version and address in net:
                return why
        if not address.is_global:
            return "not a public address"
        return None


def _said(address: IPAddress, reached: IPAddress, why: str) -> str:
    if reached == address:
        return f"{address} is {why}"
    return f"{address} stands for {reached}, {why}"


def _unscoped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address really reaches: mapped, translated, NAT64, 6to4,
    Teredo (server and client), IPv4-compatible. Empty for anything else."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    if address.ipv4_mapped:
        return (address.ipv4_mapped,)
    if address.sixtofour:
        return (address.sixtofour,)
    if address.teredo:
        return address.teredo
    raw = address.packed
    if any(address in net for net in _LAST_32_BITS) and int(address) > 1:  # `::1` is loopback
        return (ipaddress.IPv4Address(raw[12:]),)
    if address in _NAT64_LOCAL:
        found = [ipaddress.IPv4Address(raw[12:])]  # the /96 layout
        if raw[8] == 0:  # RFC 6052's "u" octet is zero in the shorter layouts
            for positions in _RFC6052_BYTES:
                if not any(raw[positions[-1] + 1 :]):  # the suffix after the address is zero
                    found.append(ipaddress.IPv4Address(bytes(raw[i] for i in positions)))
        return tuple(found)
    return ()


def parse_host(host: str) -> IPAddress | str:
    """An address for literal hosts (every spelling), else the lower-cased domain name.

    Raises HostError for hosts no browser would connect to, and for percent-encoded hosts
    (their decoding differs between parsers, which is exactly what SSRF tricks rely on).
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        raise HostError("the URL has no host")
    if "%" in text:
        raise HostError(f"the host {host!r} is percent-encoded or has an IPv6 zone")
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError as exc:
            raise HostError(f"the host {host!r} is not a valid IPv6 address") from exc
    text = text.removesuffix(".")
    labels = text.split(".")
    # WHATWG URL rule: a host whose last label is numeric is an IPv4 address or invalid.
    if _NUMERIC_PART.match(labels[-1]):
        return _parse_ipv4_loose(text, host)
    if len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        raise HostError(f"the host {host!r} is not a valid host name")
    return text


def _parse_ipv4_loose(text: str, original: str) -> ipaddress.IPv4Address:
    """inet_aton semantics: 1-4 parts, each decimal, octal (leading 0) or hex (0x)."""
    parts = text.split(".")
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        raise HostError(f"the host {original!r} is not a valid IPv4 address")
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                raise HostError(f"the host {original!r} is not a valid IPv4 address")
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    # Every part but the last is one byte; the last fills the remaining bytes.
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise HostError(f"the host {original!r} is not a valid IPv4 address")
    value = last
    for index, byte in enumerate(head):
        value += byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)
