"""``multiregion validate --config FILE``: check a deployment spec without connecting anything.

Every key of every table is checked (unknown names with the name probably meant, types, values,
the settings each part's provider takes); all problems are listed at once. ``--schema`` prints
the JSON Schema editors can check spec files with (the same as ``deployment.schema.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from multiregion import specfile
from multiregion.commands.output import add_json, emit
from multiregion.deployment import DeploymentSpec, load
from multiregion.errors import InvalidInput

EXIT_INVALID = 1


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "check a deployment spec: every key, type and value, without connecting anything"
    parser = commands.add_parser("validate", help=text, description=text[0].upper() + text[1:])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--config", type=Path, metavar="FILE", help="the deployment spec (TOML) to check"
    )
    group.add_argument(
        "--schema", action="store_true", help="print the spec's JSON Schema (for editors)"
    )
    add_json(parser)
    parser.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    if args.schema:
        print(specfile.render_schema(), end="")
        return 0
    try:
        spec = load(args.config)
    except specfile.SpecError as exc:
        return _report(args, str(args.config), list(exc.problems))
    except InvalidInput as exc:  # no such file, not TOML
        return _report(args, str(args.config), [specfile.Problem("", exc.problem)])
    emit(args, _summary(spec), f"{spec.source}: valid ({_describe(spec)})")
    return 0


def _report(args: argparse.Namespace, source: str, problems: list[specfile.Problem]) -> int:
    data = {
        "file": source,
        "valid": False,
        "problems": [{"path": p.path, "problem": p.text} for p in problems],
    }
    lines = [f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"]
    lines += [f"  {p}" for p in problems]
    emit(args, data, "\n".join(lines))
    return EXIT_INVALID


def _summary(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "file": spec.source,
        "valid": True,
        "deployment": spec.name,
        "route": spec.route.name,
        "regions": list(spec.region_names),
        "providers": dict(spec.providers),
    }


def _describe(spec: DeploymentSpec) -> str:
    providers = sorted(set(spec.providers.values()))
    return (
        f"deployment {spec.name}, route {spec.route.name}, regions "
        f"{', '.join(spec.region_names)}, provider {', '.join(providers)}"
    )
