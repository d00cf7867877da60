"""Faults injected at random while the workload runs, through a store's levers."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from multiregion.errors import MultiregionError
from multiregion.model import DivergentWrite

if TYPE_CHECKING:
    from multiregion.providers.local.store import LocalStore


@attrs.define
class Levers:
    """What the nemesis and the checker need from a store's test setup."""

    voters: tuple[str, ...]
    """Regions (and witness) the nemesis may take down or cut off."""
    fail: Callable[[str], None]
    heal: Callable[[str], None]
    partition: Callable[[list[list[str]]], None] | None
    heal_partitions: Callable[[], None]
    settle: Callable[[], None]
    """Returns once every replica holds what it will hold (raises if they do not converge)."""
    digests: Callable[[], dict[str, str]]
    """A content digest per region."""
    contents: Callable[[], dict[str, str]]
    """Key to version, as the write region holds them."""
    divergence: Callable[[], list[DivergentWrite]]
    write_region: Callable[[], str]
    """Where writes go now, so that faults can aim at it."""

    @classmethod
    def local(cls, store: LocalStore, *, settle_s: float = 30.0) -> Levers:
        def contents() -> dict[str, str]:
            return {item.key: item.version for item in store.scan()}

        return cls(
            voters=store.voters,
            fail=store.fail_region,
            heal=store.heal_region,
            partition=lambda groups: store.partition(*groups),
            heal_partitions=store.heal_partitions,
            settle=lambda: store.settle(timeout_s=settle_s),
            digests=lambda: {r: store.content_digest(r) for r in store.regions},
            contents=contents,
            divergence=store.divergence,
            write_region=lambda: store.write_region,
        )


class Nemesis:
    """Every ``interval_s`` (jittered): a region down or back, a partition or its healing, or
    a kill through ``kill`` (worker processes). ``stop`` heals everything it did."""

    def __init__(
        self,
        levers: Levers,
        rng: random.Random,
        *,
        interval_s: float = 0.05,
        kill: Callable[[], None] | None = None,
    ) -> None:
        self.levers, self.rng, self.interval_s, self.kill = levers, rng, interval_s, kill
        self.events: list[str] = []
        self._down: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for voter in sorted(self._down):
            self.levers.heal(voter)
        self.levers.heal_partitions()
        self._down.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s * self.rng.uniform(0.5, 1.5)):
            self._strike()

    def _strike(self) -> None:
        levers, rng = self.levers, self.rng
        choices = ["down", "up", "partition", "heal", "isolate", "isolate", "up", "heal"]
        action = rng.choice(choices + (["kill"] if self.kill else []))
        if action == "down" and 2 * len(self._down) >= len(levers.voters):
            action = "up"  # most of the time a majority is up, so that work gets done
        if action in ("down", "isolate"):
            voter = rng.choice(levers.voters)
            with contextlib.suppress(MultiregionError):  # aim at the writer when it is known
                voter = levers.write_region() if rng.random() < 0.7 else voter
        if action == "down":
            levers.fail(voter)
            self._down.add(voter)
        elif action == "isolate" and levers.partition is not None:
            levers.partition([[voter], [v for v in levers.voters if v != voter]])
        elif action == "up" and self._down:
            voter = rng.choice(sorted(self._down))
            levers.heal(voter)
            self._down.discard(voter)
        elif action == "partition" and levers.partition is not None:
            shuffled = list(levers.voters)
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(shuffled) - 1)
            levers.partition([shuffled[:cut], shuffled[cut:]])
            action = f"partition {shuffled[:cut]} | {shuffled[cut:]}"
        elif action == "heal":
            levers.heal_partitions()
        elif action == "kill" and self.kill is not None:
            self.kill()
        else:
            return
        named = action in ("down", "up", "isolate")
        self.events.append(f"{action} {voter}" if named else action)
