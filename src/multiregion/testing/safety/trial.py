"""One trial: a fresh local store, the workload and the nemesis for a while, then heal,
settle and check."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import attrs

from multiregion.errors import MultiregionError
from multiregion.model import LastWriterWins, Merge
from multiregion.providers.local.store import LocalStore
from multiregion.testing.safety.checker import Violation, check
from multiregion.testing.safety.history import History
from multiregion.testing.safety.nemesis import Levers, Nemesis
from multiregion.testing.safety.workload import promote_loop, union, write_loop


@attrs.frozen
class TrialSettings:
    replication: Literal["async", "sync"] = "async"
    merge: bool = False
    """A multi-writer store with a set-union merge instead of single-writer last-writer-wins."""
    processes: bool = False
    """Writers in processes of their own, killed with SIGKILL and restarted by the nemesis."""
    writers: int = 3
    handles: bool = False
    """Each writer thread with a store handle of its own (its own lock, confirmed epoch and
    lease), as separate clients have: a promote can then land between a write's admission and
    its transaction."""
    duration_s: float = 0.5
    regions: tuple[str, ...] = ("a", "b", "c")
    witness: str | None = None
    lag_s: float = 0.02
    lease_s: float | None = None
    """Write leases instead of a majority read before every write."""
    fault_interval_s: float = 0.05
    promote_interval_s: float = 0.08
    batch_share: float = 0.3
    """The share of writes that are a ``put_many`` of a few keys (last-writer-wins only)."""
    settle_s: float = 30.0
    """How long the healed store has to converge before the trial reports it did not."""


@attrs.frozen
class TrialResult:
    seed: int
    violations: tuple[Violation, ...]
    acknowledged: int
    """Acknowledged puts, a batch's keys one by one."""
    batches: int
    """Acknowledged ``put_many`` calls."""
    promotes: int
    divergent: int
    faults: tuple[str, ...]


def run_trial(settings: TrialSettings, folder: Path, seed: int) -> TrialResult:
    rng = random.Random(seed)
    store_settings = {
        "path": str(folder / "store"),
        "regions": list(settings.regions),
        "replication": settings.replication,
        "lag_s": settings.lag_s,
        "multi_writer": settings.merge,
        "witness": settings.witness,
        "lease_s": settings.lease_s,
    }
    policy = Merge(union) if settings.merge else LastWriterWins()
    store = LocalStore(**store_settings, conflict_policy=policy)  # type: ignore[arg-type]
    clients = [
        LocalStore(**store_settings, conflict_policy=policy)  # type: ignore[arg-type]
        if settings.handles and not settings.processes
        else store
        for _ in range(settings.writers)
    ]
    history = History()
    stop = threading.Event()
    workers = _Workers(settings, store_settings, folder, rng) if settings.processes else None
    threads = [
        threading.Thread(
            target=promote_loop, args=(store, history, stop, rng, settings.promote_interval_s)
        )
    ]
    if workers is None:
        threads += [
            threading.Thread(
                target=write_loop,
                args=(
                    clients[i],
                    history,
                    f"w{i}",
                    stop,
                    random.Random(rng.random()),
                    settings.batch_share,
                ),
            )
            for i in range(settings.writers)
        ]
    levers = Levers.local(store, settle_s=settings.settle_s)
    nemesis = Nemesis(
        levers,
        random.Random(rng.random()),
        interval_s=settings.fault_interval_s,
        kill=None if workers is None else workers.kill_one,
    )
    try:
        if workers is not None:
            workers.start()
        for thread in threads:
            thread.start()
        nemesis.start()
        time.sleep(settings.duration_s)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for client in clients:
            if client is not store:
                client.close()
        if workers is not None:
            workers.stop()
            history.ops.extend(workers.history().ops)
        nemesis.stop()
    try:
        levers.settle()
        violations = check(
            history,
            sync=settings.replication == "sync",
            merge=settings.merge,
            digests=levers.digests(),
            contents={item.key: item for item in store.scan()},
            divergence=levers.divergence(),
        )
        divergent = len(levers.divergence())
    except MultiregionError as exc:  # a store that cannot settle failed the trial
        violations, divergent = [Violation("not converged", f"settle failed: {exc}")], 0
    finally:
        store.close()
    if violations:
        _keep_evidence(folder, seed, violations, history, nemesis.events)
    return TrialResult(
        seed,
        tuple(violations),
        sum(op.outcome == "ok" for op in history.ops if op.kind == "put"),
        len({op.batch for op in history.ops if op.batch and op.outcome == "ok"}),
        sum(op.outcome == "ok" for op in history.ops if op.kind == "promote"),
        divergent,
        tuple(nemesis.events),
    )


EVIDENCE = "evidence.json"
"""Written into a failing trial's folder, beside its store: what to replay the failure from."""


def _keep_evidence(
    folder: Path,
    seed: int,
    violations: list[Violation],
    history: History,
    faults: list[str],
) -> None:
    """The violations, the whole history (every process's, in invocation order) and the faults,
    so that a failure found once can be read back from the store's files and the operations."""
    evidence = {
        "seed": seed,
        "violations": [str(v) for v in violations],
        "history": [op.to_json() for op in sorted(history.ops, key=lambda op: op.invoked_at)],
        "faults": faults,
    }
    (folder / EVIDENCE).write_text(json.dumps(evidence, indent=1))


class _Workers:
    """Writer processes: started, killed one at a time with SIGKILL, replaced."""

    def __init__(
        self, settings: TrialSettings, store: dict[str, object], folder: Path, rng: random.Random
    ) -> None:
        self._settings = json.dumps(
            {**store, "merge": settings.merge, "batch_share": settings.batch_share}
        )
        self._folder, self._rng, self._count = folder, rng, settings.writers
        self._running: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._started = 0
        self._born: dict[int, float] = {}
        self._min_age_s = settings.duration_s / 3

    def start(self) -> None:
        for _ in range(self._count):
            self._spawn()

    def _spawn(self) -> None:
        name = f"p{self._started}"
        self._started += 1
        command = [
            sys.executable,
            "-m",
            "multiregion.testing.safety.worker",
            self._settings,
            name,
            str(self._folder / f"{name}.history"),
            str(self._rng.randrange(2**31)),
        ]
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        self._born[process.pid] = time.monotonic()
        self._running.append(process)

    def kill_one(self) -> None:
        """SIGKILL a writer that has run a while (mid-write, mid-replication), start another."""
        with self._lock:
            now = time.monotonic()
            grown = [p for p in self._running if now - self._born[p.pid] > self._min_age_s]
            if not grown:
                return
            victim = self._rng.choice(grown)
            self._running.remove(victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            for process in self._running:
                process.send_signal(signal.SIGKILL)
                process.wait()
            self._running.clear()

    def history(self) -> History:
        return History.read(sorted(self._folder.glob("*.history")))
