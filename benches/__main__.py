"""Runs every ``benches/*.py`` script's ``main()`` in turn and prints the figures it returns.

Each script prints its own report; a ``main()`` returning a dict of figures also gets them
repeated in the summary at the end.
"""

from __future__ import annotations

import importlib
import pkgutil
import time

import benches


def run_all() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules(benches.__path__) if m.name != "__main__")
    summary: list[tuple[str, dict[str, float]]] = []
    for name in names:
        print(f"== {name} ==", flush=True)
        start = time.perf_counter()
        figures = importlib.import_module(f"benches.{name}").main()
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
        if isinstance(figures, dict):
            summary.append((name, figures))
    print("== summary ==")
    for name, figures in summary:
        for key, value in figures.items():
            print(f"{name}.{key} = {value:.4g}")


if __name__ == "__main__":
    run_all()
