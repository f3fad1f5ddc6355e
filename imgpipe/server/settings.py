"""What `imgpipe serve` is configured with (plain data, filled by the CLI or by tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..model import MAX_BYTES

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerConfig:
    users: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    # Host header values accepted (without port); empty means the bind host and local names.
    # "*" accepts any (only behind a proxy that checks it).
    allowed_hosts: tuple[str, ...] = ()
    # Networks fetching may reach despite the SSRF policy, for local testing only.
    allow_nets: tuple[str, ...] = ()
    max_bytes: int = MAX_BYTES  # download, upload and engine input limit
    workers: int = max(1, os.cpu_count() or 1)  # images processed at once
    queue: int = 32  # requests waiting beyond those; more get 503
    fetch_timeout: float = 30.0  # also the time allowed for receiving an upload
    max_redirects: int = 5
    # Open client connections; lowered to stay below the open-files limit (connections.py).
    max_connections: int = 1000
    head_timeout: float = 10.0  # seconds for a client to send a complete request head

    def host_names(self) -> frozenset[str]:
        """Accepted Host header names, lower-case, without brackets or port.

        Checking Host stops DNS-rebinding pages in a visitor's browser from using a server
        that listens on localhost.
        """
        names = self.allowed_hosts or (self.host, *LOCAL_NAMES)
        return frozenset(n.strip("[]").lower() for n in names)
