"""Peak memory and throughput of LocalBucket.upload_file/download_file on a large file.

Each way of moving the file runs in a fresh child process, whose peak RSS growth
(``resource.getrusage``) is compared with a naive baseline that reads the whole file into
memory, stores it with ``put(bytes)`` and writes ``get()``'s result back out.

    python benches/bucket_memory.py [--size-mb 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from multiregion.providers.local.bucket import LocalBucket

MB = 1024 * 1024


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _child(mode: str, work: Path) -> dict[str, float]:
    """Moves source.bin up and back down one way; returns seconds and peak RSS growth."""
    source, target = work / "source.bin", work / f"restored-{mode}.bin"
    bucket = LocalBucket(work / f"bucket-{mode}")
    base = _peak_kib()
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
    return {
        "upload_s": uploaded - started,
        "download_s": done - uploaded,
        "growth_mb": (_peak_kib() - base) / 1024,
    }


def _run(mode: str, work: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    shutil.rmtree(work / f"bucket-{mode}")
    os.unlink(work / f"restored-{mode}.bin")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return

    size = args.size_mb * MB
    with tempfile.TemporaryDirectory(prefix="bucket-memory-") as tmp:
        work = Path(tmp)
        block = os.urandom(MB)
        with (work / "source.bin").open("wb") as f:
            for _ in range(args.size_mb):
                f.write(block)
        results = {mode: _run(mode, work) for mode in ("streaming", "naive")}

    print(f"bucket_memory: LocalBucket, {args.size_mb} MB file, peak RSS growth per child process")
    for mode, r in results.items():
        print(
            f"  {mode:<9} memory +{r['growth_mb']:7.1f} MB   "
            f"upload {size / MB / r['upload_s']:7.1f} MB/s   "
            f"download {size / MB / r['download_s']:7.1f} MB/s"
        )
    ratio = results["naive"]["growth_mb"] / max(results["streaming"]["growth_mb"], 0.1)
    print(f"  naive / streaming peak memory growth: {ratio:.0f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
