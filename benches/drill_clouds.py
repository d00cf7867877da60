"""The same drills on every example spec: ``multiregion drill --fault F`` on
examples/active_passive's ``deploy.{local,aws,azure,gcp}.toml``, each behind
``multiregion faultproxy`` (``--emulators`` for the clouds: moto; Azurite, cosmosdb-server and
the Traffic Manager fake; fake-gcs-server, the Firestore emulator and the Cloud DNS fake), the
same command line for every spec (``tests/drills/local_example.py``).

Faults: ``region-outage`` (the app and, where the emulator serves regions apart, the store
replica blackholed), ``brownout`` (0.2 s +/- 0.05 s and every request answered 503: a share
below one may never fail three probes in a row, which is what the drill would then show) and
``partition``. Each row: the outcome, RTO, each phase measured and predicted (on the fakes'
clock), and the reason where a fault cannot be done on an emulator.

    python -m benches.drill_clouds [--only aws gcp] [--faults region-outage]
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
from tests.drills.local_example import behind_proxy

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
    keep = ("fault", "outcome", "rto_s", "lost_writes", "error_rate_during_fault", "passed")
    return {
        "exit_code": code,
        **{k: report[k] for k in keep},
        "failback": report["failback"]["ok"],
        "phases": phases,
    }


def one_spec(provider: str, faults: list[str]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="drill-clouds-") as folder:
        workdir = Path(folder)
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), behind_proxy(workdir, provider) as config:
            assert cli.main(["apply", "--config", str(config)]) == 0
            for fault in faults:
                row = {"provider": provider, "drill": fault, **drill(config, workdir, fault)}
                print(_line(row), file=sys.stderr, flush=True)  # stdout is quietened
                rows.append(row)
    return rows


def _line(row: dict[str, Any]) -> str:
    head = f"  {row['provider']:6} {row['drill']:14}"
    if "refused" in row:
        return f"{head} refused: {row['refused'].splitlines()[-1]}"
    rto = "never" if row["rto_s"] is None else f"{row['rto_s']:.2f} s"
    first = row["phases"]["first_request"]
    predicted = first["predicted_s"]
    shown = "-" if predicted is None else f"{predicted:.2f} s"
    return f"{head} {row['outcome']:14} RTO {rto:8} predicted {shown}, failback {row['failback']}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", choices=PROVIDERS, default=list(PROVIDERS))
    parser.add_argument("--faults", nargs="*", choices=tuple(FAULTS), default=list(FAULTS))
    args = parser.parse_args(argv)
    rows = [row for provider in args.only for row in one_spec(provider, args.faults)]
    figures = {"drills": rows}
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
