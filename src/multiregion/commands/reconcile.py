"""``multiregion reconcile``: the writes a promote superseded before they replicated.

After a failover that left the old write region's latest writes behind, they come back as
divergent writes once that region is reachable again. Each one is listed with its key, value,
epoch and region, then replayed into the write region (as a new write, fenced with the current
token) or discarded; either way it leaves the list. Nothing is replayed on its own: whether a
stale write still belongs is the operator's call.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs

from multiregion.commands import output
from multiregion.commands.connection import open_deployment
from multiregion.errors import InvalidInput, Unsupported
from multiregion.model import DivergentWrite


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "list divergent writes; replay or discard them"
    parser = commands.add_parser(name="reconcile", help=text, description=text.capitalize() + ".")
    parser.add_argument(
        "--config", required=True, type=Path, metavar="FILE", help="the deployment spec (TOML)"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--replay", metavar="ID", nargs="+", default=[], help="write these back (the ids listed)"
    )
    action.add_argument("--discard", metavar="ID", nargs="+", default=[], help="drop these")
    parser.add_argument(
        "--all", action="store_true", help="list reconciled writes too, with what was done"
    )
    output.add_json(parser, "the divergent writes", as_list=True)
    parser.set_defaults(handler=run_reconcile)


def run_reconcile(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=False) as deployment:
        if not deployment.spec.settings["store"]:
            raise InvalidInput("store", "the deployment has no store")
        store = deployment.store
        if not store.capabilities.divergence_log:
            raise Unsupported(f"{type(store).__name__} keeps no divergence log")
        action = "replay" if args.replay else "discard"
        done = [
            store.reconcile(i, action, fence=store.fence()) for i in args.replay or args.discard
        ]
        shown = done or store.divergence(include_resolved=args.all)
    output.emit(args, [_json(entry) for entry in shown], _text(shown, bool(done)))
    return 0


def _json(entry: DivergentWrite) -> dict[str, Any]:
    return attrs.asdict(entry)


def _text(entries: list[DivergentWrite], acted: bool) -> str:
    if not entries:
        return "no divergent writes"
    lines = [] if acted else [f"{len(entries)} divergent writes (oldest first):"]
    for entry in entries:
        value = "(delete)" if entry.value is None else json.dumps(entry.value, sort_keys=True)
        done = f" [{entry.resolution}]" if entry.resolution else ""
        lines.append(
            f"  {entry.id}{done}  {entry.key} = {value}  (epoch {entry.epoch} in {entry.region})"
        )
    return "\n".join(lines)
