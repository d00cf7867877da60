"""Backups.create against a naive dump of the same LocalStore, side by side in one run.

Each side runs in a fresh interpreter (so its peak RSS, VmHWM from /proc, is its own), in
alternating order for ``--rounds`` rounds; the report gives min/median/max of items per second
and of peak RSS, and the ratios the issue asks for: backup throughput / naive throughput
(target >= 1.0; also per CPU second, less disturbed by load) and backup peak RSS growth /
naive peak RSS growth (target <= 0.2).

The naive dump loads every item, serialises each as one JSON line and writes one gzip object
(default level, as ``gzip.compress``) with ``bucket.put``: what a script would do.

    python -m benches.backup_speed [--items 100000] [--rounds 5]

The store, its documents and the naive dump are those of ``benches/backup_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benches.backup_memory import _fill, _naive
from multiregion.backup import Backups
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore

REGION = "region-a"
ROOT = Path(__file__).resolve().parents[1]
SIDES = ("backup", "naive")


def _peak_rss_mb() -> float:
    """VmHWM of this process: its own peak resident set (not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(side: str, work: Path, bucket_dir: Path) -> dict[str, float]:
    with LocalStore(work / "store", [REGION], replicate=False) as store:
        bucket = LocalBucket(bucket_dir)
        before = _peak_rss_mb()
        cpu = time.process_time()
        started = time.perf_counter()
        if side == "backup":
            count = Backups(bucket).create(store).item_count
        else:
            count = _naive(store, bucket)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        return {
            "items_per_s": count / seconds,
            "items_per_cpu_s": count / cpu,
            "peak_rss_mb": _peak_rss_mb(),
            "rss_growth_mb": _peak_rss_mb() - before,
        }


def _run(side: str, work: Path, round_: int) -> dict[str, float]:
    bucket_dir = work / f"bucket-{side}-{round_}"
    out = subprocess.run(
        [sys.executable, "-m", "benches.backup_speed", "--child", side, str(work), str(bucket_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{side} round {round_} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _summary(values: list[float]) -> dict[str, float]:
    """min/median/max, as ``make bench`` collects every ``*ratio``."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _spread(values: list[float]) -> str:
    return f"{min(values):9.1f} {statistics.median(values):9.1f} {max(values):9.1f}"


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        side, work, bucket_dir = args.child
        print(json.dumps(_child(side, Path(work), Path(bucket_dir))))
        return None
    with tempfile.TemporaryDirectory(prefix="backup-speed-") as tmp:
        work = Path(tmp)
        _fill(work / "store", args.items)
        results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for round_ in range(args.rounds):
            order = SIDES if round_ % 2 == 0 else tuple(reversed(SIDES))
            for side in order:
                results[side].append(_run(side, work, round_))
    print(
        f"backup_speed: {args.items} items in a one-region LocalStore into a LocalBucket, "
        f"{args.rounds} rounds, fresh interpreter per side (min / median / max)"
    )
    for side in SIDES:
        rows = results[side]
        print(f"  {side:<7} items/s   {_spread([r['items_per_s'] for r in rows])}")
        print(f"  {side:<7} items/cpu {_spread([r['items_per_cpu_s'] for r in rows])}")
        print(f"  {side:<7} peak MB   {_spread([r['peak_rss_mb'] for r in rows])}")
        print(f"  {side:<7} growth MB {_spread([r['rss_growth_mb'] for r in rows])}")
    speed = [
        b["items_per_s"] / n["items_per_s"]
        for b, n in zip(results["backup"], results["naive"], strict=True)
    ]
    cpu = [
        b["items_per_cpu_s"] / n["items_per_cpu_s"]
        for b, n in zip(results["backup"], results["naive"], strict=True)
    ]
    memory = [
        b["rss_growth_mb"] / max(n["rss_growth_mb"], 0.1)
        for b, n in zip(results["backup"], results["naive"], strict=True)
    ]
    print(f"  throughput ratio backup/naive: {_spread(speed)}  (target >= 1.0)")
    print(f"  CPU-time ratio backup/naive:   {_spread(cpu)}  (less sensitive to a loaded machine)")
    print(f"  memory growth ratio backup/naive: {_spread(memory)}  (target <= 0.2)")
    return {
        "throughput_ratio": _summary(speed),
        "cpu_ratio": _summary(cpu),
        "memory_growth_ratio": _summary(memory),
        "backup_items_per_s": _summary([r["items_per_s"] for r in results["backup"]]),
        "naive_items_per_s": _summary([r["items_per_s"] for r in results["naive"]]),
    }


if __name__ == "__main__":
    main(sys.argv[1:])
