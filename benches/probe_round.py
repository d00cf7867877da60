"""One probe round over 500 HTTP endpoints: does it last as long as the slowest probe, or the sum?

500 cheap asyncio servers (10 loopback addresses x 50 ports) run on a thread of their own; one
answers after 200 ms, the rest after 5 ms (a round trip within a region: on bare loopback a
probe costs well under a millisecond, which would hide what concurrency is for).
``probe_round`` probes all of them concurrently a few times; a sequential loop of
``probe_once`` over a subset gives the naive baseline, extrapolated to 500.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time

from multiregion.model import HealthCheck, ProbeTarget
from multiregion.probing import probe_once, probe_round

ENDPOINTS = 500
ADDRESSES = 10
SLOW_S = 0.2
FAST_S = 0.005
ROUNDS = 5
SEQUENTIAL_SUBSET = 50

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class Servers:
    """``count`` HTTP servers on an event loop in a background thread; the first one is slow."""

    def __init__(self, count: int, addresses: list[str]) -> None:
        self.count = count
        self.addresses = addresses
        self.bound: list[tuple[str, int]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))

    def __enter__(self) -> Servers:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        servers = []
        for i in range(self.count):
            delay = SLOW_S if i == 0 else FAST_S

            async def handle(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float = delay
            ) -> None:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                    await asyncio.sleep(delay)
                    writer.write(RESPONSE)
                    await writer.drain()
                except (OSError, asyncio.IncompleteReadError):
                    pass
                finally:
                    writer.close()

            address = self.addresses[i % len(self.addresses)]
            server = await asyncio.start_server(handle, address, 0, backlog=512)
            servers.append(server)
            self.bound.append((address, server.sockets[0].getsockname()[1]))
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


async def _rounds(targets: list[ProbeTarget]) -> list[tuple[float, float, float, int]]:
    """Per timed round: seconds, slowest probe's latency, the slow endpoint's, probes passed."""
    await probe_round(targets)  # warm-up
    measured = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        results = await probe_round(targets)
        elapsed = time.perf_counter() - start
        slowest = max(r.latency_s for r in results)
        measured.append((elapsed, slowest, results[0].latency_s, sum(r.ok for r in results)))
    return measured


async def _fast_round(targets: list[ProbeTarget]) -> float:
    """Median seconds of a round over the fast endpoints only: the cost of the probes alone."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await probe_round(targets)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _sequential(targets: list[ProbeTarget]) -> tuple[float, float, float]:
    """(subset seconds, mean fast latency, slow latency) probing one after the other."""
    start = time.perf_counter()
    results = [await probe_once(t.address, t.check) for t in targets]
    elapsed = time.perf_counter() - start
    fast = statistics.fmean(r.latency_s for r in results[1:])
    return elapsed, fast, results[0].latency_s


def main() -> dict[str, float]:
    third = random.randint(1, 250)
    addresses = [f"127.0.{third}.{i}" for i in range(1, ADDRESSES + 1)]
    with Servers(ENDPOINTS, addresses) as servers:
        targets = [
            ProbeTarget(f"e{i}", address, HealthCheck("http", port, interval_s=10, timeout_s=5))
            for i, (address, port) in enumerate(servers.bound)
        ]
        rounds = asyncio.run(_rounds(targets))
        fast_round_s = asyncio.run(_fast_round(targets[1:]))
        subset_s, fast_s, slow_s = asyncio.run(_sequential(targets[:SEQUENTIAL_SUBSET]))

    round_s = statistics.median(r[0] for r in rounds)
    slowest_s = statistics.median(r[1] for r in rounds)
    passed = min(r[3] for r in rounds)
    sequential_s = slow_s + fast_s * (ENDPOINTS - 1)
    print(
        f"   {ENDPOINTS} endpoints on {ADDRESSES} loopback addresses, one answering after "
        f"{SLOW_S * 1000:.0f} ms; {ROUNDS} rounds after a warm-up; {passed} passed in each"
    )
    print(f"   {'round':>10}  {'slowest':>10}  {'ratio':>6}  {'slow endpoint':>13}")
    for elapsed, slowest, slow, _ in rounds:
        print(
            f"   {elapsed * 1000:8.1f}ms  {slowest * 1000:8.1f}ms  {elapsed / slowest:6.2f}"
            f"  {slow * 1000:11.1f}ms"
        )
    print(
        f"   concurrent round (median):         {round_s * 1000:8.1f} ms "
        f"(ratio to slowest probe {round_s / slowest_s:.2f})"
    )
    print(f"   concurrent round, {ENDPOINTS - 1} fast only:   {fast_round_s * 1000:8.1f} ms")
    print(
        f"   sequential, {SEQUENTIAL_SUBSET} measured:            {subset_s * 1000:8.1f} ms "
        f"(fast probe {fast_s * 1000:.2f} ms)"
    )
    print(
        f"   sequential, {ENDPOINTS} extrapolated:        {sequential_s * 1000:8.1f} ms "
        f"(concurrent is {sequential_s / round_s:.1f}x faster)"
    )
    return {
        "ratio": {
            "min": min(r[0] / r[1] for r in rounds),
            "median": statistics.median(r[0] / r[1] for r in rounds),
            "max": max(r[0] / r[1] for r in rounds),
        },
        "ratio_of": "a concurrent round's time / its slowest probe's (1 is ideal)",
        "round_s": round_s,
        "slowest_probe_s": slowest_s,
        "round_to_slowest": round_s / slowest_s,
        "fast_only_round_s": fast_round_s,
        "sequential_extrapolated_s": sequential_s,
        "speedup": sequential_s / round_s,
        "passed": float(passed),
    }


if __name__ == "__main__":
    main()
