"""Peak memory and throughput of Backups.create on a LocalStore of 100,000 items.

The store (one region, ~200-byte documents, filled with ``put_many``) is backed up into a
LocalBucket by each way in a fresh child process, twice: once for speed and peak RSS growth
(``resource.getrusage``), once under ``tracemalloc`` for the peak of Python allocations. The
naive baseline loads every item into a list first, then writes one gzip object.

    python benches/backup_memory.py [--items 100000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from multiregion.backup import Backups
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.validate import document_size

MB = 1024 * 1024
REGION = "region-a"
TARGET_PEAK_MB = 200
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


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _child(mode: str, work: Path, traced: bool) -> dict[str, float]:
    with LocalStore(work / "store", [REGION], replicate=False) as store:
        bucket = LocalBucket(work / f"bucket-{mode}-{'traced' if traced else 'timed'}")
        run = _streaming if mode == "streaming" else _naive
        base = _peak_kib()
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        count = run(store, bucket)
        elapsed = time.perf_counter() - started
        result = {"items": float(count), "seconds": elapsed, "rss_growth_mb": 0.0}
        if traced:
            result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
        else:
            result["rss_growth_mb"] = (_peak_kib() - base) / 1024
            result["rss_peak_mb"] = _peak_kib() / 1024
    return result


def _run(mode: str, work: Path, traced: bool) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", mode, str(work)]
    out = subprocess.run(
        [*args, "--traced"] if traced else args, check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _measure(mode: str, work: Path) -> dict[str, float]:
    timed = _run(mode, work, traced=False)
    timed["traced_peak_mb"] = _run(mode, work, traced=True)["traced_peak_mb"]
    return timed


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]), args.traced)))
        return None

    with tempfile.TemporaryDirectory(prefix="backup-memory-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        size = _fill(work / "store", args.items)
        fill_s = time.perf_counter() - started
        results = {mode: _measure(mode, work) for mode in MODES}

    print(
        f"backup_memory: {args.items} items of ~{size:.0f} bytes in a one-region LocalStore "
        f"(filled in {fill_s:.1f} s), backed up into a LocalBucket"
    )
    for mode, r in results.items():
        print(
            f"  {mode:<9} peak RSS {r['rss_peak_mb']:6.1f} MB (+{r['rss_growth_mb']:6.1f} MB)   "
            f"tracemalloc peak {r['traced_peak_mb']:6.1f} MB   "
            f"{r['items'] / r['seconds']:8.0f} items/s"
        )
    streaming, naive = results["streaming"], results["naive"]
    ratio = naive["traced_peak_mb"] / max(streaming["traced_peak_mb"], 0.1)
    verdict = "under" if streaming["rss_peak_mb"] < TARGET_PEAK_MB else "OVER"
    print(f"  naive / streaming tracemalloc peak: {ratio:.1f}x")
    print(f"  streaming peak RSS is {verdict} the {TARGET_PEAK_MB} MB target")
    return {
        "streaming_rss_peak_mb": streaming["rss_peak_mb"],
        "streaming_traced_peak_mb": streaming["traced_peak_mb"],
        "streaming_items_per_s": streaming["items"] / streaming["seconds"],
        "naive_rss_peak_mb": naive["rss_peak_mb"],
        "naive_traced_peak_mb": naive["traced_peak_mb"],
        "naive_items_per_s": naive["items"] / naive["seconds"],
        "peak_ratio": ratio,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
