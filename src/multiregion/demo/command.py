"""``multiregion demo``: the failover demo on the local provider."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from rich.console import Console


def register(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a two-region failover on this machine and measure RTO and RPO",
        description=(
            "Two regions of an example web app on loopback, a health-checked DNS failover "
            "route, steady traffic, then an outage of the primary; reports detection, DNS "
            "switch, RTO and RPO against what the configuration predicts."
        ),
    )
    parser.add_argument(
        "--replication",
        choices=("async", "sync"),
        default="async",
        help="store replication: async loses the last --lag seconds of writes, sync none",
    )
    parser.add_argument(
        "--lag",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="async replication lag in seconds",
    )
    parser.add_argument("--json", action="store_true", help="print only the report, as JSON")
    parser.set_defaults(handler=run)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from multiregion.demo.orchestrator import DemoConfig, run_demo
    from multiregion.demo.view import LiveView, LogView, QuietView, View

    config = DemoConfig(replication=args.replication, lag_s=args.lag)
    console = Console()
    view: View
    if args.json:
        view = QuietView()
    elif console.is_terminal:
        view = LiveView(console)
    else:
        view = LogView(sys.stdout)
    try:
        with _sigterm_as_ctrl_c():
            report = run_demo(config, view)
    finally:
        view.close()
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        report.print(console)
    return 0


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C: no app process or temporary file is left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
