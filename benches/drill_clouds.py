"""The same drills on every example spec: ``multiregion drill --fault F`` on
``deploy.{local,aws,azure,gcp}.toml`` of examples/active_passive (a failover route) and of
examples/active_active (a weighted route, a multi-writer store where it can be), each behind
``multiregion faultproxy`` (``--emulators`` for the clouds: moto; Azurite, cosmosdb-server and
the Traffic Manager fake; fake-gcs-server, the Firestore emulator and the Cloud DNS fake), the
same command line for every spec (``tests/drills/local_example.py``).

Faults: ``region-outage`` (the app and, where the emulator serves regions apart, the store
replica blackholed), ``brownout`` (0.2 s +/- 0.05 s and every request answered 503: a share
below one may never fail three probes in a row, which is what the drill would then show) and
``partition``. Each row: the outcome, RTO, each phase measured and predicted (on the fakes'
clock), and the reason where a fault cannot be done on an emulator; for active-active, the
error rate while traffic shifted and what healing showed (replicas converged, or the keys they
still disagree on: moto never replicates, cosmosdb-server and Firestore keep one copy).

    python -m benches.drill_clouds [--only aws gcp] [--faults region-outage]
        [--examples active_active]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from multiregion import cli
from tests.drills.local_example import EXAMPLE, behind_proxy

EXAMPLES = ("active_passive", "active_active")
PROVIDERS = ("local", "aws", "azure", "gcp")
FAULTS = {
    "region-outage": [],
    "brownout": ["--error-rate", "1"],
    "partition": [],
}


def drill(config: Path, workdir: Path, fault: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(
            [
                *("drill", "--config", str(config), "--fault", fault, *FAULTS[fault]),
                *("--steady", "1", "--timeout", "30", "--json", "--no-history"),
                *("--svg", str(workdir / f"{fault}.svg")),
            ]
        )
    if not out.getvalue().strip():
        return {"exit_code": code, "refused": err.getvalue().strip()}
    report: dict[str, Any] = json.loads(out.getvalue())
    phases = {
        name: {"measured_s": p["measured_s"], "predicted_s": p["predicted_s"], "ratio": p["ratio"]}
        for name, p in report["phases"].items()
    }
    keep = (
        *("mode", "fault", "outcome", "rto_s", "lost_writes", "error_rate_during_fault"),
        *("converged_s", "conflicts", "divergent_writes", "passed"),
    )
    return {
        "exit_code": code,
        **{k: report[k] for k in keep},
        "failback": report["failback"]["ok"],
        "phases": phases,
    }


def one_spec(example: str, provider: str, faults: list[str]) -> list[dict[str, Any]]:
    rows = []
    folder_of = EXAMPLE.parent / example
    with tempfile.TemporaryDirectory(prefix="drill-clouds-") as folder:
        workdir = Path(folder)
        quiet = io.StringIO()
        with (
            contextlib.redirect_stdout(quiet),
            behind_proxy(workdir, provider, folder_of) as config,
        ):
            assert cli.main(["apply", "--config", str(config)]) == 0
            for fault in faults:
                row = {
                    **{"example": example, "provider": provider, "drill": fault},
                    **drill(config, workdir, fault),
                }
                print(_line(row), file=sys.stderr, flush=True)  # stdout is quietened
                rows.append(row)
    return rows


def _line(row: dict[str, Any]) -> str:
    head = f"  {row['example']:14} {row['provider']:6} {row['drill']:14}"
    if "refused" in row:
        return f"{head} refused: {row['refused'].splitlines()[-1]}"
    rto = "never" if row["rto_s"] is None else f"{row['rto_s']:.2f} s"
    first = row["phases"]["first_request"]
    predicted = first["predicted_s"]
    shown = "-" if predicted is None else f"{predicted:.2f} s"
    line = f"{head} {row['outcome']:14} RTO {rto:8} predicted {shown}, failback {row['failback']}"
    if row["mode"] == "active-active":
        rate = row["error_rate_during_fault"]
        line += f", errors {'-' if rate is None else f'{rate:.0%}'} during the shift"
        line += f", converged {row['converged_s']}, conflicts {row['conflicts']}"
    return line


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", choices=PROVIDERS, default=list(PROVIDERS))
    parser.add_argument("--faults", nargs="*", choices=tuple(FAULTS), default=list(FAULTS))
    parser.add_argument("--examples", nargs="*", choices=EXAMPLES, default=list(EXAMPLES))
    args = parser.parse_args(argv)
    rows = [
        row
        for example in args.examples
        for provider in args.only
        for row in one_spec(example, provider, args.faults)
    ]
    figures = {"drills": rows}
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
