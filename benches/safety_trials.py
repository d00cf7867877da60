"""Thousands of fault trials on the local store through the Jepsen-style checker.

``python benches/safety_trials.py --trials 200`` runs that many trials per configuration
(threads sharing a handle or with one each, processes, async and sync, last-writer-wins and a
set-union merge, a two-region store with a witness) and prints the violations found by kind,
with the acknowledged writes (a share of them keys of ``put_many`` batches), promotes and
divergent writes the trials went through. Exit status 1 if anything was violated. A failing
trial's folder is kept in ``--keep`` (``out/safety-failures``): its regions' SQLite files, and
``evidence.json`` with the violations, every operation's invocation and completion, and the
faults, to read the failure back from.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from multiregion.testing.safety import TrialSettings, run_trial

CONFIGURATIONS = {
    "threads async lww": TrialSettings(lag_s=0.2),
    "threads sync lww": TrialSettings(replication="sync"),
    "threads async merge": TrialSettings(merge=True, lag_s=0.1),
    "threads sync merge": TrialSettings(merge=True, replication="sync"),
    "witness async lww": TrialSettings(regions=("a", "b"), witness="w", lag_s=0.2),
    "handles async lww": TrialSettings(handles=True, lag_s=0.2),
    "handles sync lww": TrialSettings(handles=True, replication="sync"),
    "leases async lww": TrialSettings(lease_s=0.05, lag_s=0.2),
    "leases sync lww": TrialSettings(lease_s=0.05, replication="sync"),
    "processes async lww": TrialSettings(processes=True, duration_s=1.5, lag_s=0.2),
    "processes sync lww": TrialSettings(processes=True, duration_s=1.5, replication="sync"),
    "processes async merge": TrialSettings(processes=True, duration_s=1.5, merge=True),
}


def main(argv: list[str] | None = None) -> dict[str, dict[str, object]]:
    """Runs the trials; returns the counts per configuration (``make bench`` keeps them)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=125, help="trials per configuration")
    parser.add_argument("--only", default=None, help="run the configurations containing this")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    parser.add_argument(
        "--keep",
        type=Path,
        default=Path("out/safety-failures"),
        help="where a failing trial's folder is kept: its store and evidence.json",
    )
    args = parser.parse_args(argv)
    summary: dict[str, dict[str, object]] = {}
    for name, settings in CONFIGURATIONS.items():
        if args.only and args.only not in name:
            continue
        started = time.monotonic()
        kinds: collections.Counter[str] = collections.Counter()
        totals = collections.Counter[str]()
        for seed in range(args.trials):
            folder = Path(tempfile.mkdtemp(prefix="safety-"))
            result = run_trial(settings, folder, seed)
            if result.violations:
                kept = args.keep / f"{name.replace(' ', '-')}-seed{seed}"
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(folder, kept)
                print(f"  {name} seed {seed}: store and evidence kept in {kept}", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
            kinds.update(v.kind for v in result.violations)
            totals.update(
                acknowledged=result.acknowledged,
                batches=result.batches,
                promotes=result.promotes,
                divergent=result.divergent,
                faults=len(result.faults),
                failed_trials=bool(result.violations),
            )
            for violation in result.violations[:3]:
                print(f"  {name} seed {seed}: {violation}", file=sys.stderr)
        summary[name] = {"trials": args.trials, "violations": dict(kinds), **totals}
        print(
            f"{name:24} {args.trials} trials, {sum(kinds.values())} violations {dict(kinds)}; "
            f"{totals['acknowledged']} acknowledged writes ({totals['batches']} put_many), "
            f"{totals['promotes']} promotes, "
            f"{totals['divergent']} divergent writes, {totals['faults']} faults "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    found = main()
    sys.exit(1 if any(entry["violations"] for entry in found.values()) else 0)
