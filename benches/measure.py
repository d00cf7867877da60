"""What every bench shares: side-by-side rounds, min/median/max, and true per-process memory.

Sides run in turn within each round (adapter, baseline, adapter, ...), so that a change in
the machine's load hits both; a ratio is taken per round and then summarised, since only
ratios mean anything on a shared machine.

Peak memory is the kernel's high-water mark of this process (``VmHWM`` in
``/proc/self/status``), reset first through ``/proc/self/clear_refs``. ``ru_maxrss`` is no
use in a child: Linux carries it across ``exec`` from the parent.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROUNDS = 5
"""Rounds per comparison: the issue asks for medians of at least five."""
MB = 1024 * 1024

Spread = dict[str, float]


def spread(values: Sequence[float]) -> Spread:
    """min, median and max of ``values``."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def compare(
    sides: Mapping[str, Callable[[int], object]],
    *,
    ops: int,
    rounds: int = ROUNDS,
    ratio: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Runs each side once per round, in turn; each call does ``ops`` operations.

    The order turns each round (a b, b a, ...), so that what the first side leaves behind
    (caches, a busy emulator, the machine's load) does not always fall on the same side.
    A side is called with the round number (0 is a warm-up, not counted), so that it can use
    fresh keys. Returns each side's operations per second and, for ``ratio=(a, b)`` (the
    first two sides by default), a/b per round: above 1 means ``a`` is faster.
    """
    names = list(sides)
    first, second = ratio or (names[0], names[1])
    rates: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds + 1):
        for name in names if number % 2 == 0 else reversed(names):
            started = time.perf_counter()
            sides[name](number)
            elapsed = time.perf_counter() - started
            if number:
                rates[name].append(ops / elapsed)
    result: dict[str, Any] = {f"{name}_per_s": spread(rates[name]) for name in names}
    result["ratio"] = spread([a / b for a, b in zip(rates[first], rates[second], strict=True)])
    result["ratio_of"] = f"{first} / {second}"
    result["ops_per_round"] = ops
    result["rounds"] = rounds
    return result


def reset_peak() -> None:
    """Resets this process's peak RSS to its current RSS (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb() -> float:
    """This process's peak RSS since it started or since ``reset_peak``."""
    return _status_kib("VmHWM") / 1024


def rss_mb() -> float:
    return _status_kib("VmRSS") / 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def in_child(module: str, *args: str) -> dict[str, Any]:
    """Runs ``python -m module args`` in a fresh interpreter; returns the JSON it prints last."""
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def show(title: str, result: Mapping[str, Any]) -> None:
    """One line per comparison: the ratio's min/median/max and each side's median rate."""
    r = result["ratio"]
    rates = "  ".join(
        f"{key[: -len('_per_s')]} {value['median']:,.0f}/s"
        for key, value in result.items()
        if key.endswith("_per_s")
    )
    print(
        f"  {title:<28} ratio {r['median']:6.2f} (min {r['min']:.2f}, max {r['max']:.2f})"
        f"   {rates}",
        flush=True,
    )
