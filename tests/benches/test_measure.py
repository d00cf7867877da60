"""Smoke tests of the bench machinery: what it measures is the thing measured."""

from __future__ import annotations

from pathlib import Path

from benches.__main__ import ratios
from benches.measure import compare, in_child


def test_a_childs_peak_memory_is_its_own_not_its_parents(tmp_path: Path) -> None:
    (tmp_path / "source.bin").write_bytes(b"x" * 4096)
    ballast = b"\x01" * (160 * 1024 * 1024)  # resident: what ru_maxrss would report
    figures = in_child("benches.bucket_memory", "--child", "streaming", str(tmp_path))
    del ballast
    assert 0 < figures["rss_peak_mb"] < 100
    assert figures["rss_growth_mb"] < 20


def test_sides_alternate_and_every_ratio_reaches_the_summary() -> None:
    calls: list[tuple[str, int]] = []
    result = compare(
        {"a": lambda n: calls.append(("a", n)), "b": lambda n: calls.append(("b", n))},
        ops=1,
        rounds=3,
    )
    # round 0 is the warm-up; the order turns each round
    assert calls == [(s, n) for n in range(4) for s in ("ab" if n % 2 == 0 else "ba")]
    assert set(result["ratio"]) == {"min", "median", "max"}
    assert result["ratio_of"] == "a / b"
    found = dict(ratios({"store": {"put": result, "memory_ratio": result["ratio"]}}))
    assert set(found) == {"store.put", "store.memory_ratio"}
