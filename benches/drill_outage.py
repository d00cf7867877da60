"""Blackhole outages of examples/active_passive, measured RTO against predicted, run after run.

Each run is ``multiregion drill --fault region-outage`` on the example's local spec behind the
fault proxy (``tests/drills/local_example.py``), fresh state every run, without failback: the
primary blackholed and its replica failed, the controller promotes, DNS moves. Each run's
steady traffic lasts a random 1-2 s, so that the fault falls at a random point of the probes'
interval, as outages do (the prediction is a mean over that phase), and the DNS data plane
runs apart from the drill (as ``multiregion serve``), its probes on a schedule of their own.
The ratio is the measured RTO (first successful request) over the drill's predicted mean for
it, and the same for each phase; the issue's bar is 0.8-1.2 on every run.

    python -m benches.drill_outage [--runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from multiregion import cli
from tests.drills.local_example import behind_proxy

PHASES = ("detection", "dns_switch", "promotion", "first_request")


def one_run() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="drill-bench-") as workdir,
        behind_proxy(Path(workdir)) as config,
    ):
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["apply", "--config", str(config)]) == 0
        # The DNS data plane (as `multiregion serve`) and the drill's own probes, like two
        # processes started apart, keep schedules unrelated to each other.
        time.sleep(random.uniform(0, 1))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli.main(
                [
                    *("drill", "--config", str(config), "--fault", "region-outage"),
                    *("--steady", f"{random.uniform(1, 2):.3f}", "--timeout", "20"),
                    *("--no-failback", "--json"),
                    *("--svg", str(Path(workdir) / "drill.svg")),
                ]
            )
    report: dict[str, Any] = json.loads(out.getvalue())
    report["exit_code"] = code
    return report


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    runs = []
    for number in range(1, args.runs + 1):
        report = one_run()
        phases = report["phases"]
        runs.append(report)
        print(
            f"  run {number:2}: {report['outcome']}, RTO {report['rto_s']:.2f} s, predicted"
            f" {phases['first_request']['predicted_s']:.2f} s, ratio"
            f" {phases['first_request']['ratio']:.2f}",
            flush=True,
        )
    figures: dict[str, Any] = {
        "runs": args.runs,
        "recovered": sum(r["outcome"] == "recovered" for r in runs),
        "rto_s": spread([r["rto_s"] for r in runs if r["rto_s"] is not None]),
        "predicted_rto_s": runs[0]["phases"]["first_request"]["predicted_s"],
    }
    for phase in PHASES:
        ratios = [r["phases"][phase]["ratio"] for r in runs if r["phases"][phase]["ratio"]]
        key = "ratio" if phase == "first_request" else f"{phase}_ratio"
        figures[key] = spread(ratios)
    inside = [0.8 <= r["phases"]["first_request"]["ratio"] <= 1.2 for r in runs]
    figures["within_0.8_1.2"] = f"{sum(inside)} of {len(inside)}"
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
