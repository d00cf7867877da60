"""Peak memory and throughput of LocalBucket.upload_file/download_file on a large file.

Each way of moving the file runs in a fresh interpreter, in rounds, the two ways in turn. The
child resets its peak RSS (``/proc/self/clear_refs``) just before moving the file and reads
``VmHWM`` after, so the figure is that transfer's own peak; ``ru_maxrss`` would not do, since
Linux carries it across exec from the parent. The naive baseline reads the whole file into
memory, stores it with ``put(bytes)`` and writes ``get()``'s result back out.

    python -m benches.bucket_memory [--size-mb 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benches.measure import MB, ROUNDS, in_child, peak_mb, reset_peak, rss_mb, show, spread
from multiregion.providers.local.bucket import LocalBucket

MODES = ("streaming", "naive")


def _child(mode: str, work: Path) -> dict[str, float]:
    """Moves source.bin up and back down one way; returns its rates and peak RSS."""
    source, target = work / "source.bin", work / f"restored-{mode}.bin"
    bucket = LocalBucket(work / f"bucket-{mode}")
    size_mb = source.stat().st_size / MB
    base = rss_mb()
    reset_peak()
    started = time.perf_counter()
    if mode == "streaming":
        bucket.upload_file(source, "big")
        uploaded = time.perf_counter()
        bucket.download_file("big", target)
    else:
        bucket.put("big", source.read_bytes())
        uploaded = time.perf_counter()
        target.write_bytes(bucket.get("big"))
    done = time.perf_counter()
    peak = peak_mb()
    return {
        "upload_mb_per_s": size_mb / (uploaded - started),
        "download_mb_per_s": size_mb / (done - uploaded),
        "rss_peak_mb": peak,
        "rss_growth_mb": peak - base,
    }


def _run(mode: str, work: Path) -> dict[str, float]:
    result = in_child("benches.bucket_memory", "--child", mode, str(work))
    shutil.rmtree(work / f"bucket-{mode}")
    os.unlink(work / f"restored-{mode}.bin")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return None

    with tempfile.TemporaryDirectory(prefix="bucket-memory-") as tmp:
        work = Path(tmp)
        block = os.urandom(MB)
        with (work / "source.bin").open("wb") as f:
            for _ in range(args.size_mb):
                f.write(block)
        rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                rounds[mode].append(_run(mode, work))

    figures: dict[str, Any] = {"size_mb": args.size_mb, "rounds": args.rounds}
    for mode in MODES:
        for key in rounds[mode][0]:
            figures[f"{mode}_{key}"] = spread([r[key] for r in rounds[mode]])
    pairs = list(zip(rounds["streaming"], rounds["naive"], strict=True))
    for way in ("upload", "download"):
        key = f"{way}_mb_per_s"
        figures[f"{way}_ratio"] = spread([s[key] / n[key] for s, n in pairs])
    figures["ratio"] = spread([s["rss_growth_mb"] / max(n["rss_growth_mb"], 0.1) for s, n in pairs])
    figures["ratio_of"] = "streaming / naive peak RSS growth (below 1: less memory)"
    print(
        f"  LocalBucket, {args.size_mb} MB file, {args.rounds} rounds, each in a fresh interpreter"
    )
    for mode in MODES:
        print(
            f"    {mode:<9} peak RSS {figures[f'{mode}_rss_peak_mb']['median']:7.1f} MB "
            f"(+{figures[f'{mode}_rss_growth_mb']['median']:7.1f} MB)   "
            f"upload {figures[f'{mode}_upload_mb_per_s']['median']:7.1f} MB/s   "
            f"download {figures[f'{mode}_download_mb_per_s']['median']:7.1f} MB/s"
        )
    show("bucket memory growth", {"ratio": figures["ratio"]})
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
