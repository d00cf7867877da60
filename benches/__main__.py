"""``make bench``: every benchmark, side by side, in one run; one JSON of ratios at the end.

Each bench compares the library with the raw SDK or a naive baseline on the same emulator in
the same run (``benches.measure``) and returns its figures; a bench that fails is recorded as
failed and the others still run. The summary printed last and written to ``out/bench.json``
(or ``--out``) holds, for every comparison, the min/median/max of its per-round ratio.

    python -m benches [--only local_store dns] [--out out/bench.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benches.measure import machine

BENCHES: dict[str, list[str] | None] = {
    "local_store": None,
    "dns": None,
    "backup_speed": ["--items", "30000"],
    "backup_memory": ["--items", "20000"],
    "bucket_memory": ["--size-mb", "128"],
    "aws": None,
    "azure": None,
    "gcp": None,
    "probe_round": None,
    "safety_trials": ["--trials", "10"],
    "drill_outage": ["--runs", "10"],
    "drill_clouds": None,
}
"""What ``make bench`` runs (``benches.<name>.main``), with the arguments that size each to
finish in a few minutes together (None: its defaults)."""
HELPERS = {"__main__", "measure", "sides"}


def _call(name: str) -> Any:
    main = importlib.import_module(f"benches.{name}").main
    argv = BENCHES[name]
    return main() if argv is None else main(argv)


def ratios(figures: Any, path: str = "") -> Iterator[tuple[str, dict[str, float]]]:
    """Every ``ratio`` in a bench's figures, by its path (``aws.dynamodb.put``)."""
    if not isinstance(figures, dict):
        return
    for key, value in figures.items():
        if key.endswith("ratio") and isinstance(value, dict) and "median" in value:
            yield (path if key == "ratio" else f"{path}.{key}".lstrip(".")), value
        else:
            yield from ratios(value, f"{path}.{key}".lstrip("."))


def run(names: list[str], out: Path) -> int:
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, "-m", "benches", *sys.argv[1:]]),
        "benches": {},
    }
    failed = []
    for name in names:
        print(f"== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            figures = _call(name)
        except Exception as exc:  # one broken bench must not hide the others
            traceback.print_exc()
            figures = {"failed": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        seconds = time.perf_counter() - started
        report["benches"][name] = {"seconds": round(seconds, 1), "figures": figures}
        print(f"   ({seconds:.1f} s)\n", flush=True)
    report["ratios"] = {
        f"{name}.{path}".rstrip("."): spread
        for name, bench in report["benches"].items()
        for path, spread in ratios(bench["figures"])
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print("== ratios (median of the per-round ratios; min .. max) ==")
    for path, spread in report["ratios"].items():
        print(f"  {path:<44} {spread['median']:8.2f}   {spread['min']:.2f} .. {spread['max']:.2f}")
    print(f"written to {out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    others = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name not in BENCHES and m.name not in HELPERS
    )
    if others:
        print(f"not part of make bench (run them with python -m benches.NAME): {', '.join(others)}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=list(BENCHES))
    parser.add_argument("--out", type=Path, default=Path("out/bench.json"))
    args = parser.parse_args()
    return run(args.only, args.out)


if __name__ == "__main__":
    sys.exit(main())
