"""A fault proxy in a process of its own that delays everything one upstream sends back.

    python -m benches.latency_proxy UPSTREAM_PORT LATENCY_MS

prints the loopback port it listens on, then serves until its standard input closes; a bench
uses it through ``delayed``. In the bench's own process the proxy's threads would take CPU
and the GIL from the client measured.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from multiregion.faultproxy.proxy import FaultProxy
from multiregion.faultproxy.toxics import Latency


@contextlib.contextmanager
def delayed(upstream_port: int, latency_ms: float) -> Iterator[int]:
    """The port of a proxy, in a process of its own, that delays what the upstream sends."""
    command = [sys.executable, "-m", "benches.latency_proxy", str(upstream_port), str(latency_ms)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proxy:
        assert proxy.stdin is not None
        assert proxy.stdout is not None
        try:
            yield int(proxy.stdout.readline())
        finally:
            proxy.stdin.close()


def main(upstream_port: int, latency_ms: float) -> None:
    with FaultProxy() as proxy:
        _, port = proxy.add_listener("upstream", ("127.0.0.1", 0), ("127.0.0.1", upstream_port))
        with proxy.toxic("upstream", Latency(latency_ms / 1000)):
            print(port, flush=True)
            sys.stdin.read()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
