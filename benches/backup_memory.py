"""Peak memory and throughput of Backups.create on a LocalStore of 100,000 items.

The store (one region, ~200-byte documents, filled with ``put_many``) is backed up into a
LocalBucket by each way in a fresh interpreter, in rounds, the two ways in turn: the child
resets its peak RSS (``/proc/self/clear_refs``) just before the backup and reads ``VmHWM``
after it, so the figure is that backup's own peak (``ru_maxrss`` would be the parent's, which
Linux carries across exec). One more child per way runs under ``tracemalloc`` for the peak of
Python allocations. The naive baseline loads every item into a list first, then writes one
gzip object.

    python -m benches.backup_memory [--items 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benches.measure import ROUNDS, in_child, peak_mb, reset_peak, rss_mb, show, spread
from multiregion.backup import Backups
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.validate import document_size

MB = 1024 * 1024
REGION = "region-a"
MODES = ("streaming", "naive")


def _document(i: int) -> dict[str, Any]:
    return {
        "order": i,
        "customer": f"customer-{i % 9973:05d}",
        "lines": [{"sku": f"sku-{(i * 7 + n) % 1000:04d}", "qty": n + 1} for n in range(3)],
        "status": "shipped",
        "note": "x" * 48,
    }


def _fill(path: Path, items: int) -> float:
    """Writes the items; returns the mean document size in bytes."""
    with LocalStore(path, [REGION], replicate=False) as store:
        batch = 10_000
        for start in range(0, items, batch):
            store.put_many(
                (f"order/{i:07d}", _document(i)) for i in range(start, min(items, start + batch))
            )
    return sum(document_size(_document(i)) for i in range(1000)) / 1000


def _naive(store: LocalStore, bucket: LocalBucket) -> int:
    everything = list(store.scan(""))
    lines = [
        json.dumps({"k": item.key, "v": item.value}, separators=(",", ":")).encode()
        for item in everything
    ]
    bucket.put("naive/backup.jsonl.gz", gzip.compress(b"\n".join(lines)), create_only=True)
    return len(everything)


def _streaming(store: LocalStore, bucket: LocalBucket) -> int:
    return Backups(bucket).create(store).item_count


def _child(mode: str, work: Path, traced: bool, number: int) -> dict[str, float]:
    with LocalStore(work / "store", [REGION], replicate=False) as store:
        bucket = LocalBucket(work / f"bucket-{mode}-{'traced' if traced else 'timed'}-{number}")
        run = _streaming if mode == "streaming" else _naive
        if traced:
            tracemalloc.start()
        base = rss_mb()
        reset_peak()
        started = time.perf_counter()
        count = run(store, bucket)
        elapsed = time.perf_counter() - started
        result = {"items_per_s": count / elapsed, "rss_peak_mb": peak_mb()}
        result["rss_growth_mb"] = result["rss_peak_mb"] - base
        if traced:
            result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
    return result


def _run(mode: str, work: Path, traced: bool, number: int = 0) -> dict[str, float]:
    flags = ["--traced"] if traced else []
    return in_child("benches.backup_memory", "--child", mode, str(work), str(number), *flags)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        mode, work, number = args.child
        print(json.dumps(_child(mode, Path(work), args.traced, int(number))))
        return None

    with tempfile.TemporaryDirectory(prefix="backup-memory-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        size = _fill(work / "store", args.items)
        fill_s = time.perf_counter() - started
        rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for number in range(args.rounds):  # the two ways in turn, each in a fresh interpreter
            for mode in MODES:
                rounds[mode].append(_run(mode, work, traced=False, number=number))
        traced = {mode: _run(mode, work, traced=True)["traced_peak_mb"] for mode in MODES}

    figures: dict[str, Any] = {"items": args.items, "rounds": args.rounds}
    for mode in MODES:
        for key in ("items_per_s", "rss_peak_mb", "rss_growth_mb"):
            figures[f"{mode}_{key}"] = spread([r[key] for r in rounds[mode]])
        figures[f"{mode}_traced_peak_mb"] = traced[mode]
    pairs = list(zip(rounds["streaming"], rounds["naive"], strict=True))
    figures["ratio"] = spread([s["items_per_s"] / n["items_per_s"] for s, n in pairs])
    figures["ratio_of"] = "streaming items/s / naive items/s"
    figures["memory_ratio"] = spread([s["rss_peak_mb"] / n["rss_peak_mb"] for s, n in pairs])
    figures["growth_ratio"] = spread(
        [s["rss_growth_mb"] / max(n["rss_growth_mb"], 0.1) for s, n in pairs]
    )
    print(
        f"  backup of {args.items} items of ~{size:.0f} bytes (filled in {fill_s:.1f} s), "
        f"{args.rounds} rounds, each in a fresh interpreter"
    )
    for mode in MODES:
        print(
            f"    {mode:<9} {figures[f'{mode}_items_per_s']['median']:8,.0f} items/s   "
            f"peak RSS {figures[f'{mode}_rss_peak_mb']['median']:6.1f} MB "
            f"(+{figures[f'{mode}_rss_growth_mb']['median']:5.1f} MB during the backup)   "
            f"tracemalloc peak {traced[mode]:6.1f} MB"
        )
    show("backup vs naive dump", figures)
    print(
        f"    streaming/naive: peak RSS {figures['memory_ratio']['median']:.2f}, "
        f"growth during the backup {figures['growth_ratio']['median']:.2f}"
    )
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
